// Package lakebase gives Go programs a rotating Databricks Lakebase OAuth password through
// liblakebase (cgo).
//
// The library caches the token, refreshes it in one background thread before it expires and
// resolves configuration like the Databricks SDKs (DATABRICKS_HOST, DATABRICKS_TOKEN,
// DATABRICKS_CLIENT_ID/SECRET, profiles in ~/.databrickscfg, LAKEBASE_INSTANCE or
// LAKEBASE_ENDPOINT). This package only calls it: a cache hit is a memory read.
//
// Ask for the password every time a new physical connection is opened; package
// github.com/liblakebase/liblakebase/bindings/go/lakebasepgx does that for pgx, pgxpool and database/sql.
//
// Building: cgo takes lakebase.h and liblakebase.so from `pkg-config lakebase`, which the
// liblakebase-dev Debian package (and `make install`) provides. Without pkg-config, build with
// -tags lakebase_nopkgconfig and set CGO_CFLAGS=-I<dir of lakebase.h> and
// CGO_LDFLAGS="-L<dir> -Wl,-rpath,<dir>" for a library outside the default paths.
package lakebase

/*
#include <stdlib.h>
#include <string.h>
#include <lakebase.h>
*/
import "C"

import (
	"context"
	"crypto/subtle"
	"fmt"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// ABIMajor is the liblakebase SONAME major version this package was written for.
const ABIMajor = C.LAKEBASE_VERSION_MAJOR

// Version returns the linked liblakebase's version, e.g. "0.1.0".
func Version() string { return C.GoString(C.lakebase_version()) }

// String returns the library's name for the code, e.g. "LAKEBASE_AUTH_ERROR".
func (c Code) String() string { return C.GoString(C.lakebase_result_name(C.int(c))) }

// call runs f on a locked OS thread and, on failure, reads that thread's lakebase_last_error:
// the message is per thread and a goroutine may otherwise move between two cgo calls.
func call(f func() C.lakebase_result) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	return check(f())
}

func check(r C.lakebase_result) error {
	if r == C.LAKEBASE_OK {
		return nil
	}
	return &Error{Code: Code(r), Message: lastError()}
}

func lastError() string {
	n := C.lakebase_last_error(nil, 0)
	if n == 0 {
		return ""
	}
	buf := make([]byte, int(n)+1)
	C.lakebase_last_error((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(len(buf)))
	return string(buf[:n])
}

// A first guess that fits a Lakebase token (~1 KB), so a cache hit is one call.
const firstGuess = 2048

type getter func(buf *C.char, n C.size_t, out *C.size_t) C.lakebase_result

// getString copies a (buf, buf_len, out_len) value: sized with the INSUFFICIENT_SIZE protocol,
// copied into a Go buffer that is wiped once the string has been made.
func getString(f getter) (string, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	size := firstGuess
	for i := 0; i < 8; i++ { // a value may grow between two calls (a new token); bounded
		buf := make([]byte, size)
		var n C.size_t
		r := f((*C.char)(unsafe.Pointer(&buf[0])), C.size_t(size), &n)
		switch r {
		case C.LAKEBASE_OK:
			s := string(buf[:n])
			clear(buf)
			return s, nil
		case C.LAKEBASE_INSUFFICIENT_SIZE:
			size = int(n) + 1
		default:
			return "", check(r)
		}
	}
	return "", &Error{Code: CodeInternal, Message: "value kept growing while it was being copied"}
}

// Client is a liblakebase client handle. Clients with the same workspace, credentials and target
// share one cached token inside the library, so creating several is cheap.
//
// A Client may be used from any number of goroutines; Close waits for calls in flight.
type Client struct {
	mu       sync.RWMutex
	p        *C.lakebase_client
	borrowed bool
}

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// NewClient creates a client from opts (no network I/O). Unknown option keys, a malformed value
// and contradictory settings are reported here or by the first Password.
func NewClient(opts Options) (*Client, error) {
	for k := range opts.Extra {
		if !keyRE.MatchString(k) {
			return nil, &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf("invalid option name %q", k)}
		}
	}
	return newClient(opts.Encode())
}

func newClient(options string) (*Client, error) {
	cs := C.CString(options)
	defer func() {
		// The options string may hold a token or client secret: wipe our copy.
		C.memset(unsafe.Pointer(cs), 0, C.size_t(len(options)))
		C.free(unsafe.Pointer(cs))
	}()
	var p *C.lakebase_client
	if err := call(func() C.lakebase_result { return C.lakebase_client_new(cs, &p) }); err != nil {
		return nil, err
	}
	c := &Client{p: p}
	runtime.SetFinalizer(c, (*Client).Close)
	return c, nil
}

var (
	defaultOnce   sync.Mutex
	defaultClient *Client
)

// DefaultClient returns the process-wide default client (environment + ~/.databrickscfg), the one
// Password uses. Its Close is a no-op. A configuration error is not remembered: fix the
// environment and call again.
func DefaultClient() (*Client, error) {
	defaultOnce.Lock()
	defer defaultOnce.Unlock()
	if defaultClient != nil {
		return defaultClient, nil
	}
	var p *C.lakebase_client
	if err := call(func() C.lakebase_result {
		return C.lakebase_default_client(&p)
	}); err != nil {
		return nil, err
	}
	defaultClient = &Client{p: p, borrowed: true}
	return defaultClient, nil
}

// Password returns the default client's current password.
func Password(ctx context.Context) (string, error) {
	c, err := DefaultClient()
	if err != nil {
		return "", err
	}
	return c.Password(ctx)
}

// with runs f with the handle held against a concurrent Close.
func (c *Client) with(f func(p *C.lakebase_client) error) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.p == nil {
		return ErrClosed
	}
	err := f(c.p)
	runtime.KeepAlive(c)
	return err
}

// withCtx is with for calls that may go to the network: ctx ends the wait, not the request (the
// library bounds that with its own timeouts; a token it mints stays cached for the next call).
func (c *Client) withCtx(ctx context.Context, f func(p *C.lakebase_client) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if ctx.Done() == nil {
		return c.with(f)
	}
	done := make(chan error, 1)
	go func() { done <- c.with(f) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Password returns the client's current Lakebase password (an OAuth token). A cache hit is a
// memory read in the library; a miss mints a token. Call it for every new connection.
func (c *Client) Password(ctx context.Context) (string, error) {
	var pw string
	f := func(p *C.lakebase_client) (err error) {
		pw, err = getString(func(b *C.char, n C.size_t, out *C.size_t) C.lakebase_result {
			return C.lakebase_client_get_password(p, b, n, out)
		})
		return err
	}
	// A servable token is cached: the call is a memory read, no need to guard it with ctx.
	if exp, err := c.Expiry(); err == nil && !exp.IsZero() {
		err = c.with(f)
		return pw, err
	}
	if err := c.withCtx(ctx, f); err != nil {
		return "", err
	}
	return pw, nil
}

// RefreshRejected reports that the server turned down a login with rejected (a password this
// client handed out): the library mints a new one if rejected is still the cached password (N
// concurrent reports cause one mint). It returns whether the client's password is now another
// one, i.e. whether one more login is worth trying.
func (c *Client) RefreshRejected(ctx context.Context, rejected string) (bool, error) {
	cs := C.CString(rejected)
	defer func() {
		C.memset(unsafe.Pointer(cs), 0, C.size_t(len(rejected)))
		C.free(unsafe.Pointer(cs))
	}()
	err := c.withCtx(ctx, func(p *C.lakebase_client) error {
		return call(func() C.lakebase_result { return C.lakebase_client_refresh_rejected(p, cs) })
	})
	if err != nil {
		return false, err
	}
	pw, err := c.Password(ctx)
	if err != nil {
		return false, err
	}
	return subtle.ConstantTimeCompare([]byte(pw), []byte(rejected)) != 1, nil
}

// PostgresRole returns the Postgres role to log in as: the group's role when the client acts for
// a group (group_name / group_id), else Identity. lakebasepgx uses it as the default user. The
// first call may make one API request; the library caches the result.
func (c *Client) PostgresRole(ctx context.Context) (string, error) {
	var s string
	err := c.withCtx(ctx, func(p *C.lakebase_client) (err error) {
		s, err = getString(func(b *C.char, n C.size_t, out *C.size_t) C.lakebase_result {
			return C.lakebase_client_postgres_role(p, b, n, out)
		})
		return err
	})
	return s, err
}

// ConnectRetryDelay is the library's retry policy for a failed database connect
// (lakebase_connect_retry_delay), for endpoints waking from scale-to-zero: how long to wait before
// the next attempt, or ok=false to give up. sqlstate is the server's SQLSTATE ("" when the failure
// was not a server answer), message the error text, passwordAsked whether the server asked for the
// password before the failure, failedAttempts the attempts failed so far (this one included),
// elapsed the time since the first attempt began, connectTimeout the connection's connect_timeout
// in whole seconds ("" for none). Transport failures (refused, reset, timed out) and 57P03 are
// retried within LAKEBASE_CONNECT_RETRY seconds, else connectTimeout, else 10 s. No I/O.
func ConnectRetryDelay(sqlstate, message string, passwordAsked bool, failedAttempts int, elapsed time.Duration, connectTimeout string) (delay time.Duration, ok bool, err error) {
	cstr := func(s string) *C.char {
		if s == "" {
			return nil
		}
		return C.CString(strings.ReplaceAll(s, "\x00", ""))
	}
	state, msg, timeout := cstr(sqlstate), cstr(message), cstr(connectTimeout)
	defer C.free(unsafe.Pointer(state))
	defer C.free(unsafe.Pointer(msg))
	defer C.free(unsafe.Pointer(timeout))
	asked := C.int(0)
	if passwordAsked {
		asked = 1
	}
	if failedAttempts < 1 {
		failedAttempts = 1
	}
	var out C.int64_t
	if err := call(func() C.lakebase_result {
		return C.lakebase_connect_retry_delay(state, msg, asked, C.uint32_t(failedAttempts), C.int64_t(elapsed.Milliseconds()), timeout, &out)
	}); err != nil {
		return 0, false, err
	}
	if out < 0 {
		return 0, false, nil
	}
	return time.Duration(out) * time.Millisecond, true, nil
}

// Refresh discards the cached token and mints a new one now. After a rejected login prefer
// RefreshRejected, which mints once however many connections report it.
func (c *Client) Refresh(ctx context.Context) error {
	return c.withCtx(ctx, func(p *C.lakebase_client) error {
		return call(func() C.lakebase_result { return C.lakebase_client_refresh(p) })
	})
}

// Expiry returns when the cached token expires, or the zero Time when none is cached. No network I/O.
func (c *Client) Expiry() (time.Time, error) {
	var secs C.int64_t
	err := c.with(func(p *C.lakebase_client) error {
		return call(func() C.lakebase_result { return C.lakebase_client_token_expiry(p, &secs) })
	})
	if err != nil || secs == 0 {
		return time.Time{}, err
	}
	return time.Unix(int64(secs), 0), nil
}

// Identity returns the workspace user name the client authenticates as, which is its Postgres
// role (e.g. "alice@example.com", or a service principal's application id). The first call makes
// one API request; the library caches the result.
func (c *Client) Identity(ctx context.Context) (string, error) {
	var s string
	err := c.withCtx(ctx, func(p *C.lakebase_client) (err error) {
		s, err = getString(func(b *C.char, n C.size_t, out *C.size_t) C.lakebase_result {
			return C.lakebase_client_identity(p, b, n, out)
		})
		return err
	})
	return s, err
}

// AuthType returns the auth method in use ("pat", "oauth-m2m", ...). No network I/O.
func (c *Client) AuthType() (string, error) {
	var s string
	err := c.with(func(p *C.lakebase_client) (err error) {
		s, err = getString(func(b *C.char, n C.size_t, out *C.size_t) C.lakebase_result {
			return C.lakebase_client_auth_type(p, b, n, out)
		})
		return err
	})
	return s, err
}

// RefreshError returns the last token-refresh error not yet followed by a successful refresh, or "".
func (c *Client) RefreshError() (string, error) {
	var s string
	err := c.with(func(p *C.lakebase_client) (err error) {
		s, err = getString(func(b *C.char, n C.size_t, out *C.size_t) C.lakebase_result {
			return C.lakebase_client_refresh_error(p, b, n, out)
		})
		return err
	})
	return s, err
}

// Close releases the handle; later calls return ErrClosed. It is a no-op for the default client
// and when already closed.
func (c *Client) Close() error {
	if c.borrowed {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.p != nil {
		C.lakebase_client_free(c.p)
		c.p = nil
		runtime.SetFinalizer(c, nil)
	}
	return nil
}
