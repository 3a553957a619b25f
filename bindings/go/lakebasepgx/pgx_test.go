package lakebasepgx_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
	"github.com/liblakebase/liblakebase/bindings/go/internal/rigtest"
	"github.com/liblakebase/liblakebase/bindings/go/lakebasepgx"
)

func TestMain(m *testing.M) { rigtest.Main(m) }

const sslSQL = "select current_user::text, ssl from pg_stat_ssl where pid = pg_backend_pid()"

func patClient(t *testing.T) *lakebase.Client {
	t.Helper()
	c, err := lakebase.NewClient(lakebase.Options{
		Host: rigtest.Env(t, "FAKE_URL"), Token: rigtest.Env(t, "RIG_PAT"), Instance: rigtest.Env(t, "RIG_INSTANCE"),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestConnectOverTLS(t *testing.T) {
	ctx := context.Background()
	c := patClient(t)
	conn, err := lakebasepgx.Connect(ctx, c, rigtest.ConnString(t, rigtest.Env(t, "RIG_USER")))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var user string
	var ssl bool
	if err := conn.QueryRow(ctx, sslSQL).Scan(&user, &ssl); err != nil {
		t.Fatal(err)
	}
	if user != rigtest.Env(t, "RIG_USER") || !ssl {
		t.Fatalf("user %q ssl %v", user, ssl)
	}
}

func TestM2MPool(t *testing.T) {
	ctx := context.Background()
	c, err := lakebase.NewClient(lakebase.Options{
		Host: rigtest.Env(t, "FAKE_URL"), ClientID: rigtest.Env(t, "RIG_SP_CLIENT_ID"),
		ClientSecret: rigtest.Env(t, "RIG_SP_CLIENT_SECRET"), Endpoint: rigtest.Env(t, "RIG_ENDPOINT"),
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	role, err := c.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := lakebasepgx.NewPool(ctx, c, rigtest.ConnString(t, role))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var user string
	if err := pool.QueryRow(ctx, "select current_user::text").Scan(&user); err != nil || user != rigtest.Env(t, "RIG_SP_USER") {
		t.Fatalf("current_user %q, %v", user, err)
	}
}

func TestWrongPATSurfacesTheLibraryError(t *testing.T) {
	ctx := context.Background()
	bad := "dapi" + strings.Repeat("f", 32)
	c, err := lakebase.NewClient(lakebase.Options{Host: rigtest.Env(t, "FAKE_URL"), Token: bad, Instance: rigtest.Env(t, "RIG_INSTANCE")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs := rigtest.ConnString(t, rigtest.Env(t, "RIG_USER"))

	pool, err := lakebasepgx.NewPool(ctx, c, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	err = pool.Ping(ctx)
	if !errors.Is(err, lakebase.ErrAuth) || !strings.Contains(err.Error(), "403") || strings.Contains(err.Error(), bad) {
		t.Fatalf("pgxpool: %v", err)
	}
	db, err := lakebasepgx.OpenDB(c, cs)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(ctx); !errors.Is(err, lakebase.ErrAuth) {
		t.Fatalf("database/sql: %v", err)
	}
	if _, err := lakebasepgx.Connect(ctx, c, cs); !errors.Is(err, lakebase.ErrAuth) {
		t.Fatalf("pgx.Connect: %v", err)
	}
}

type logins struct {
	mu   sync.Mutex
	seen []login
}

type login struct {
	at       time.Time
	password string
}

func (l *logins) add(conn *pgx.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, login{time.Now(), conn.Config().Password})
}

// after reports whether a connection opened after t logged in with a password other than first.
func (l *logins) after(t time.Time, first string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, s := range l.seen {
		if s.at.After(t) && s.password != first {
			return true
		}
	}
	return false
}

// A pgxpool.Pool and a database/sql DB whose connections live 1.5 s keep opening new physical
// connections past the first (10 s) token's expiry, each logging in with the library's current token.
func TestPoolsOutliveTheFirstToken(t *testing.T) {
	rigtest.ShortTokens(t)
	ctx := context.Background()
	c := patClient(t)
	if err := c.Refresh(ctx); err != nil { // a 10 s token from now on
		t.Fatal(err)
	}
	first, err := c.Password(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expiry, _ := c.Expiry()
	if d := time.Until(expiry); d <= 0 || d > 11*time.Second {
		t.Fatalf("first token expires in %s, want ~10 s", d)
	}
	minted := rigtest.Minted(t)
	user := rigtest.Env(t, "RIG_USER")
	cs := rigtest.ConnString(t, user)

	var poolLogins, sqlLogins logins
	cfg, err := pgxpool.ParseConfig(cs)
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConnLifetime, cfg.MaxConnLifetimeJitter, cfg.MaxConns = 1500*time.Millisecond, 0, 4
	cfg.AfterConnect = func(_ context.Context, conn *pgx.Conn) error { poolLogins.add(conn); return nil }
	lakebasepgx.ConfigurePool(cfg, c)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	db, err := lakebasepgx.OpenDB(c, cs, stdlib.OptionAfterConnect(func(_ context.Context, conn *pgx.Conn) error {
		sqlLogins.add(conn)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetConnMaxLifetime(1500 * time.Millisecond)

	use := func() {
		var got string
		var ssl bool
		if err := pool.QueryRow(ctx, sslSQL).Scan(&got, &ssl); err != nil || got != user || !ssl {
			t.Fatalf("pgxpool query: %q %v %v", got, ssl, err)
		}
		if err := db.QueryRowContext(ctx, "select current_user::text").Scan(&got); err != nil || got != user {
			t.Fatalf("database/sql query: %q %v", got, err)
		}
	}
	past := expiry.Add(500 * time.Millisecond)
	rigtest.PollUntil(t, 30*time.Second, 300*time.Millisecond, "new connections after the first token expired", func() bool {
		use()
		return poolLogins.after(past, first) && sqlLogins.after(past, first)
	})
	use()
	if !poolLogins.after(time.Time{}, "") || poolLogins.seen[0].password != first {
		t.Fatal("the pool's first connection did not use the first token")
	}
	if got := rigtest.Minted(t); got < minted+1 {
		t.Fatalf("minted %d tokens, want more than %d", got, minted)
	}
	if re, _ := c.RefreshError(); re != "" {
		t.Fatalf("refresh error: %s", re)
	}
}

func TestConfigurePoolKeepsAnExistingHook(t *testing.T) {
	ctx := context.Background()
	c := patClient(t)
	cfg, err := pgxpool.ParseConfig(rigtest.ConnString(t, rigtest.Env(t, "RIG_USER")))
	if err != nil {
		t.Fatal(err)
	}
	called := false
	cfg.BeforeConnect = func(_ context.Context, cc *pgx.ConnConfig) error {
		called = true
		cc.RuntimeParams["application_name"] = "mine"
		return nil
	}
	lakebasepgx.ConfigurePool(cfg, c)
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var app string
	if err := pool.QueryRow(ctx, "select current_setting('application_name')").Scan(&app); err != nil || app != "mine" || !called {
		t.Fatalf("application_name %q, %v, called %v", app, err, called)
	}
}
