package lakebasepgx_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
	"github.com/liblakebase/liblakebase/bindings/go/internal/rigtest"
	"github.com/liblakebase/liblakebase/bindings/go/lakebasepgx"
)

// freshClient has a PAT of its own, so its cache entry is shared with no other test.
func freshClient(t *testing.T, opts lakebase.Options) *lakebase.Client {
	t.Helper()
	b := make([]byte, 16)
	rand.Read(b)
	pat := "dapi" + hex.EncodeToString(b)
	rigtest.Fake(t, "/_fake/identities", map[string]any{"pats": map[string]string{pat: rigtest.Env(t, "RIG_USER")}})
	opts.Host, opts.Token = rigtest.Env(t, "FAKE_URL"), pat
	if opts.Endpoint == "" {
		opts.Instance = rigtest.Env(t, "RIG_INSTANCE")
	}
	c, err := lakebase.NewClient(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func failedChecks(t *testing.T) int {
	return int(rigtest.Fake(t, "/_fake/stats", nil)["checks"].(map[string]any)["failed"].(float64))
}

// connString: the rig's PostgreSQL without user and sslmode (the package's defaults apply).
func connString(t *testing.T, extra string) string {
	return fmt.Sprintf("host=%s port=%s dbname=databricks_postgres sslrootcert='%s' %s",
		rigtest.Env(t, "PGHOST"), rigtest.Env(t, "PGPORT"), rigtest.Env(t, "PGSSLROOTCERT"), extra)
}

func whoami(t *testing.T, ctx context.Context, c *lakebase.Client, cs string) (string, error) {
	conn, err := lakebasepgx.Connect(ctx, c, cs)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var who string
	err = conn.QueryRow(ctx, "select current_user::text").Scan(&who)
	return who, err
}

// The server no longer accepts the cached token (revoked here; in the field also a token left in
// the shared cache by another process): one new token, one more login, which succeeds.
func TestARejectedCachedTokenIsReplacedOnce(t *testing.T) {
	ctx := context.Background()
	for _, via := range []string{"Connect", "OpenDB"} {
		t.Run(via, func(t *testing.T) {
			c := freshClient(t, lakebase.Options{})
			old, err := c.Password(ctx)
			if err != nil {
				t.Fatal(err)
			}
			rigtest.Fake(t, "/_fake/revoke", map[string]any{"token": old})
			minted, failed := rigtest.Minted(t), failedChecks(t)
			var who string
			if via == "Connect" {
				who, err = whoami(t, ctx, c, connString(t, ""))
			} else {
				db, oerr := lakebasepgx.OpenDB(c, connString(t, ""))
				if oerr != nil {
					t.Fatal(oerr)
				}
				err = db.QueryRowContext(ctx, "select current_user::text").Scan(&who)
				db.Close()
			}
			if err != nil || who != rigtest.Env(t, "RIG_USER") {
				t.Fatalf("who %q err %v", who, err)
			}
			if got := rigtest.Minted(t); got != minted+1 {
				t.Fatalf("minted %d, want %d (one new token)", got, minted+1)
			}
			if got := failedChecks(t); got != failed+1 {
				t.Fatalf("failed logins %d, want %d", got, failed+1)
			}
			if worth, err := c.RefreshRejected(ctx, old); err != nil || !worth {
				t.Fatalf("a stale report: worth %v err %v", worth, err)
			}
			if got := rigtest.Minted(t); got != minted+1 {
				t.Fatalf("a stale report minted (%d)", got)
			}
		})
	}
}

// A login no new token can fix (a token for another identity, in Lakebase's words) is not retried.
func TestAnIdentityMismatchIsNotRetried(t *testing.T) {
	ctx := context.Background()
	c := freshClient(t, lakebase.Options{})
	pw, err := c.Password(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rigtest.Fake(t, "/_fake/config", map[string]any{"pg_reject_mode": "identity"})
	defer rigtest.Fake(t, "/_fake/config", map[string]any{"pg_reject_mode": "pam"})
	minted, failed := rigtest.Minted(t), failedChecks(t)
	_, err = whoami(t, ctx, c, connString(t, "user='"+rigtest.Env(t, "RIG_SP_USER")+"'"))
	if err == nil || !strings.Contains(err.Error(), "did not match the security label") {
		t.Fatalf("err %v", err)
	}
	if strings.Contains(fmt.Sprintf("%v %+v %#v", err, err, err), pw) {
		t.Fatal("the password is in the error")
	}
	if rigtest.Minted(t) != minted || failedChecks(t) != failed+1 {
		t.Fatalf("minted %d (was %d), failed %d (was %d): one attempt, no new token", rigtest.Minted(t), minted, failedChecks(t), failed)
	}
}

func TestAMissingDatabaseIsNotRetried(t *testing.T) {
	ctx := context.Background()
	c := freshClient(t, lakebase.Options{})
	if _, err := c.Password(ctx); err != nil {
		t.Fatal(err)
	}
	minted := rigtest.Minted(t)
	t0 := time.Now()
	_, err := whoami(t, ctx, c, connString(t, "dbname=no_such_db"))
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("err %v", err)
	}
	if time.Since(t0) > 2*time.Second || rigtest.Minted(t) != minted {
		t.Fatalf("retried: %s, minted %d (was %d)", time.Since(t0), rigtest.Minted(t), minted)
	}
}

// An endpoint waking from scale-to-zero refuses connections, then answers "starting up": Connect
// retries with backoff within connect_timeout and logs in once it is up.
func TestAWakingEndpointIsRetried(t *testing.T) {
	cold := os.Getenv("RIG_COLD_HOST")
	if cold == "" {
		t.Skip("the rig has no cold-start host")
	}
	ctx := context.Background()
	c := freshClient(t, lakebase.Options{})
	defer rigtest.Fake(t, "/_fake/cold/reset", map[string]any{})
	cs := fmt.Sprintf("host=%s port=%s dbname=databricks_postgres sslrootcert='%s' connect_timeout=10",
		cold, rigtest.Env(t, "PGPORT"), rigtest.Env(t, "PGSSLROOTCERT"))
	rigtest.Fake(t, "/_fake/cold/arm", map[string]any{"mode": "refuse", "wake_ms": 1500, "now": true})
	t0 := time.Now()
	if who, err := whoami(t, ctx, c, cs); err != nil || who != rigtest.Env(t, "RIG_USER") {
		t.Fatalf("who %q err %v", who, err)
	}
	if time.Since(t0) < time.Second {
		t.Fatalf("connected after %s: it did not wait for the wake-up", time.Since(t0))
	}
	rigtest.Fake(t, "/_fake/cold/arm", map[string]any{"mode": "starting", "wake_attempts": 2, "now": true})
	if _, err := whoami(t, ctx, c, cs); err != nil {
		t.Fatal(err)
	}
	if n := rigtest.Fake(t, "/_fake/cold", nil)["counters"].(map[string]any)["starting"].(float64); n != 2 {
		t.Fatalf(`%v "starting up" answers, want 2`, n)
	}
	// LAKEBASE_CONNECT_RETRY=0 turns retries off: the first refusal is the answer.
	t.Setenv("LAKEBASE_CONNECT_RETRY", "0")
	rigtest.Fake(t, "/_fake/cold/arm", map[string]any{"mode": "refuse", "wake_ms": 60000, "now": true})
	t0 = time.Now()
	if _, err := whoami(t, ctx, c, cs); err == nil {
		t.Fatal("connected to a cold endpoint without retries")
	}
	if time.Since(t0) > 2*time.Second {
		t.Fatalf("gave up after %s: it retried", time.Since(t0))
	}
}

func TestTLSModesWithoutEncryptionAreRefused(t *testing.T) {
	ctx := context.Background()
	c := freshClient(t, lakebase.Options{})
	for _, mode := range []string{"disable", "allow", "prefer"} {
		if _, err := lakebasepgx.Connect(ctx, c, connString(t, "sslmode="+mode)); err == nil || !strings.Contains(err.Error(), "only TLS") {
			t.Fatalf("sslmode=%s: %v", mode, err)
		}
		if _, err := lakebasepgx.NewPool(ctx, c, "postgres://h/db?sslmode="+mode); err == nil {
			t.Fatalf("pool sslmode=%s accepted", mode)
		}
	}
	t.Setenv("PGSSLMODE", "disable")
	if _, _, err := lakebasepgx.ParseConfig(connString(t, "")); err == nil {
		t.Fatal("PGSSLMODE=disable accepted")
	}
	t.Setenv("PGSSLMODE", "")
	os.Unsetenv("PGSSLMODE")
	cfg, needUser, err := lakebasepgx.ParseConfig(connString(t, ""))
	if err != nil || cfg.TLSConfig == nil || cfg.TLSConfig.InsecureSkipVerify || len(cfg.Fallbacks) != 0 || !needUser {
		t.Fatalf("verify-full by default, no plaintext fallback: %+v %v %v", cfg, needUser, err)
	}
}

// The default user is the client's Postgres role: its group's role when it acts for a group.
func TestTheDefaultUserIsThePostgresRole(t *testing.T) {
	group := os.Getenv("RIG_GROUP_NAME")
	if group == "" {
		t.Skip("the rig has no group")
	}
	ctx := context.Background()
	c := freshClient(t, lakebase.Options{Endpoint: rigtest.Env(t, "RIG_ENDPOINT"), Extra: map[string]string{"group_name": group}})
	if role, err := c.PostgresRole(ctx); err != nil || role != group {
		t.Fatalf("role %q err %v", role, err)
	}
	if who, err := whoami(t, ctx, c, connString(t, "")); err != nil || who != group {
		t.Fatalf("Connect: who %q err %v", who, err)
	}
	pool, err := lakebasepgx.NewPool(ctx, c, connString(t, ""))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var who string
	if err := pool.QueryRow(ctx, "select current_user::text").Scan(&who); err != nil || who != group {
		t.Fatalf("pool: who %q err %v", who, err)
	}
}
