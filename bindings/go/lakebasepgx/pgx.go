// Package lakebasepgx wires a lakebase.Client into pgx v5: every new physical connection — of a
// pgx.Conn, a pgxpool.Pool or a database/sql DB — gets the library's current password, so a pool
// keeps opening connections after the first token expired.
//
// The connection string names host, dbname and, optionally, user and sslmode; it needs no
// password. The parsers here (ParseConfig, ParsePoolConfig, and so Connect, NewPool, Connector,
// OpenDB) apply the library's defaults:
//
//   - user: the client's Postgres role (lakebase.Client.PostgresRole: its group's role when it acts
//     for a group, else its identity) unless the connection string or PGUSER names one;
//   - sslmode: verify-full unless the connection string or PGSSLMODE sets one; disable, allow and
//     prefer are refused (the token must never travel in clear text). With no sslrootcert (and no
//     PGSSLROOTCERT) pgx verifies against the system's roots. Beyond that the connection string
//     decides, as pgx reads it.
//
// Connect and the database/sql Connector open connections like the library's own libpq connects:
// a login the server turned down after the password was sent (a *pgconn.PgError of SQLSTATE class
// 28, other than a role that does not exist or a token for another identity) is retried once after
// lakebase.Client.RefreshRejected; a connect that failed on transport (refused, reset, timed out)
// or with 57P03 "starting up" — an endpoint waking from scale-to-zero — is retried with the delay
// of lakebase.ConnectRetryDelay. pgxpool has no hook around a connection's connect (BeforeConnect
// runs before it, and a failure goes straight to the Acquire that asked), so a pgxpool.Pool's
// connects are not retried; its next connect gets the client's current password. Wrap Acquire, or
// use Connect, where a retry matters.
package lakebasepgx

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	lakebase "github.com/liblakebase/liblakebase/bindings/go"
)

// BeforeConnect returns a hook that sets the connection's password from client (nil: the default
// client). It fits pgxpool.Config.BeforeConnect and stdlib.OptionBeforeConnect.
func BeforeConnect(client *lakebase.Client) func(context.Context, *pgx.ConnConfig) error {
	return hook(client, false)
}

// hook sets the password and, with setUser, the user (the client's Postgres role).
func hook(client *lakebase.Client, setUser bool) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cfg *pgx.ConnConfig) error {
		c, err := resolve(client)
		if err != nil {
			return err
		}
		if setUser {
			role, err := c.PostgresRole(ctx)
			if err != nil {
				return err
			}
			cfg.User = role
		}
		pw, err := c.Password(ctx)
		if err != nil {
			return err
		}
		cfg.Password = pw
		return nil
	}
}

// ConfigurePool installs BeforeConnect(client) on cfg, after any BeforeConnect already set.
func ConfigurePool(cfg *pgxpool.Config, client *lakebase.Client) {
	configurePool(cfg, client, false)
}

func configurePool(cfg *pgxpool.Config, client *lakebase.Client, setUser bool) {
	h := hook(client, setUser)
	prev := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if prev != nil {
			if err := prev(ctx, cc); err != nil {
				return err
			}
		}
		return h(ctx, cc)
	}
}

// ParseConfig is pgx.ParseConfig for connString with sslmode=verify-full unless connString or
// PGSSLMODE sets one (disable, allow and prefer are an error). needUser says whether neither
// connString nor PGUSER names a user (the connect hooks then log in as the Postgres role).
func ParseConfig(connString string) (cfg *pgx.ConnConfig, needUser bool, err error) {
	s, needUser, err := withDefaults(connString)
	if err != nil {
		return nil, false, err
	}
	cfg, err = pgx.ParseConfig(s)
	return cfg, needUser, err
}

// ParsePoolConfig is pgxpool.ParseConfig with ParseConfig's defaults.
func ParsePoolConfig(connString string) (cfg *pgxpool.Config, needUser bool, err error) {
	s, needUser, err := withDefaults(connString)
	if err != nil {
		return nil, false, err
	}
	cfg, err = pgxpool.ParseConfig(s)
	return cfg, needUser, err
}

// NewPool is pgxpool.NewWithConfig for connString (ParsePoolConfig's defaults) with the password
// hook installed and, unless connString or PGUSER names a user, the client's Postgres role.
func NewPool(ctx context.Context, client *lakebase.Client, connString string) (*pgxpool.Pool, error) {
	cfg, needUser, err := ParsePoolConfig(connString)
	if err != nil {
		return nil, err
	}
	configurePool(cfg, client, needUser)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// Connect opens one pgx.Conn for connString (ParseConfig's defaults) with the current password,
// retried as the package documentation says.
func Connect(ctx context.Context, client *lakebase.Client, connString string) (*pgx.Conn, error) {
	cfg, needUser, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	c, err := resolve(client)
	if err != nil {
		return nil, err
	}
	before := hook(c, needUser)
	return retrying(ctx, c, cfg.ConnectTimeout, func(ctx context.Context) (*pgx.Conn, string, error) {
		cc := cfg.Copy()
		if err := before(ctx, cc); err != nil {
			return nil, "", errStop{err}
		}
		conn, err := pgx.ConnectConfig(ctx, cc)
		return conn, cc.Password, err
	})
}

// Connector returns a database/sql driver.Connector (pgx's stdlib) that fetches the password for
// every new connection, with ParseConfig's defaults and Connect's retries: sql.OpenDB(connector).
// opts are passed to stdlib.GetConnector after the password hook (e.g. stdlib.OptionAfterConnect).
func Connector(client *lakebase.Client, connString string, opts ...stdlib.OptionOpenDB) (driver.Connector, error) {
	cfg, needUser, err := ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	rc := &connector{client: client, timeout: cfg.ConnectTimeout}
	// The hook runs once per attempt; it notes the password it handed out for the retry decision.
	h := hook(client, needUser)
	record := func(ctx context.Context, cc *pgx.ConnConfig) error {
		if err := h(ctx, cc); err != nil {
			return errStop{err}
		}
		if p, ok := ctx.Value(passwordKey{}).(*string); ok {
			*p = cc.Password
		}
		return nil
	}
	all := append([]stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(record)}, opts...)
	rc.inner = stdlib.GetConnector(*cfg, all...)
	return rc, nil
}

// OpenDB is sql.OpenDB(Connector(client, connString, opts...)).
func OpenDB(client *lakebase.Client, connString string, opts ...stdlib.OptionOpenDB) (*sql.DB, error) {
	conn, err := Connector(client, connString, opts...)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

type passwordKey struct{}

// connector wraps stdlib's connector with Connect's retries.
type connector struct {
	inner   driver.Connector
	client  *lakebase.Client
	timeout time.Duration
}

func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	lc, err := resolve(c.client)
	if err != nil {
		return nil, err
	}
	conn, err := retrying(ctx, lc, c.timeout, func(ctx context.Context) (driver.Conn, string, error) {
		var pw string
		conn, err := c.inner.Connect(context.WithValue(ctx, passwordKey{}, &pw))
		return conn, pw, err
	})
	var stop errStop
	if errors.As(err, &stop) {
		return nil, stop.err
	}
	return conn, err
}

func (c *connector) Driver() driver.Driver { return c.inner.Driver() }

// errStop marks a failure before any connect (the password or role lookup): not retried.
type errStop struct{ err error }

func (e errStop) Error() string { return e.err.Error() }
func (e errStop) Unwrap() error { return e.err }

// notThePassword: server answers after the password that no new password changes.
var notThePassword = regexp.MustCompile(`(?i)does not exist|did not match the security label`)

// retrying runs attempt until it succeeds or the policy says stop. attempt returns the password
// it logged in with (for RefreshRejected).
func retrying[T any](ctx context.Context, c *lakebase.Client, connectTimeout time.Duration, attempt func(context.Context) (T, string, error)) (T, error) {
	start := time.Now()
	timeout := ""
	if connectTimeout > 0 {
		timeout = fmt.Sprint(int64((connectTimeout + time.Second - 1) / time.Second))
	} else if v := os.Getenv("PGCONNECT_TIMEOUT"); v != "" {
		timeout = v
	}
	failed, renewed := 0, false
	for {
		v, pw, err := attempt(ctx)
		if err == nil {
			return v, nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return v, stop.err
		}
		failed++
		var pgErr *pgconn.PgError
		isPg := errors.As(err, &pgErr)
		if isPg && strings.HasPrefix(pgErr.Code, "28") && !notThePassword.MatchString(pgErr.Message) {
			// The server's answer to the login (class 28: it checked the password we sent).
			if renewed || pw == "" {
				return v, err
			}
			renewed = true
			if worth, rerr := c.RefreshRejected(ctx, pw); rerr != nil || !worth {
				return v, err // the server's error says what it refused
			}
			continue
		}
		sqlstate, message := "", err.Error()
		if isPg {
			sqlstate = pgErr.Code
		} else {
			message = transportText(err)
		}
		delay, ok, derr := lakebase.ConnectRetryDelay(sqlstate, message, false, failed, time.Since(start), timeout)
		if derr != nil || !ok || ctx.Err() != nil {
			return v, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
	}
}

// transportText puts a Go network error in libpq's words (what ConnectRetryDelay reads).
func transportText(err error) string {
	msg := err.Error()
	var ne net.Error
	switch {
	case strings.Contains(msg, "connection refused"), strings.Contains(msg, "connection reset"):
		return msg
	case errors.As(err, &ne) && ne.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "timeout expired: " + msg
	case strings.Contains(msg, "unexpected EOF"), strings.Contains(msg, "EOF"), strings.Contains(msg, "broken pipe"):
		return "server closed the connection unexpectedly: " + msg
	}
	return msg
}

var urlScheme = regexp.MustCompile(`^postgres(ql)?://`)

// withDefaults adds sslmode=verify-full to connString when neither it nor PGSSLMODE sets one,
// refuses modes without TLS, and says whether a user is named (in connString or PGUSER).
func withDefaults(connString string) (string, bool, error) {
	mode, hasMode, user := "", false, false
	if urlScheme.MatchString(connString) {
		u, err := url.Parse(connString)
		if err != nil {
			return "", false, fmt.Errorf("lakebasepgx: cannot parse the connection URL: %w", redactURL(err))
		}
		user = u.User != nil && u.User.Username() != "" || u.Query().Get("user") != ""
		if m := u.Query().Get("sslmode"); m != "" {
			mode, hasMode = m, true
		}
	} else {
		for _, kv := range keywordValues(connString) {
			switch kv[0] {
			case "user":
				user = kv[1] != ""
			case "sslmode":
				mode, hasMode = kv[1], kv[1] != ""
			}
		}
	}
	if !hasMode {
		mode = os.Getenv("PGSSLMODE")
	}
	user = user || os.Getenv("PGUSER") != ""
	switch mode {
	case "":
		if urlScheme.MatchString(connString) {
			sep := "?"
			if strings.Contains(connString, "?") {
				sep = "&"
			}
			connString += sep + "sslmode=verify-full"
		} else {
			connString = strings.TrimSpace(connString + " sslmode=verify-full")
		}
	case "require", "verify-ca", "verify-full":
	default:
		return "", false, fmt.Errorf("lakebasepgx: sslmode=%s is not allowed: Lakebase accepts only TLS, and the password must not be sent without it (use require, verify-ca or verify-full)", mode)
	}
	return connString, !user, nil
}

// keywordValues splits a libpq keyword/value string (values may be single-quoted, \ escapes).
func keywordValues(s string) [][2]string {
	var out [][2]string
	i := 0
	for i < len(s) {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n') {
			i++
		}
		j := i
		for j < len(s) && s[j] != '=' && s[j] != ' ' {
			j++
		}
		key := s[i:j]
		for j < len(s) && s[j] == ' ' {
			j++
		}
		if j >= len(s) || s[j] != '=' {
			return out
		}
		j++
		for j < len(s) && s[j] == ' ' {
			j++
		}
		var val strings.Builder
		if j < len(s) && s[j] == '\'' {
			j++
			for j < len(s) && s[j] != '\'' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				val.WriteByte(s[j])
				j++
			}
			j++
		} else {
			for j < len(s) && s[j] != ' ' {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				val.WriteByte(s[j])
				j++
			}
		}
		out = append(out, [2]string{key, val.String()})
		i = j
	}
	return out
}

// redactURL drops the URL from a url.Parse error (it may hold a password).
func redactURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func resolve(c *lakebase.Client) (*lakebase.Client, error) {
	if c != nil {
		return c, nil
	}
	return lakebase.DefaultClient()
}
