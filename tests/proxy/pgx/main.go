// pgx v5 (pure Go, built with CGO_ENABLED=0) through the lakebase proxy: no password in the
// connection string; the proxy answers the server's password request.
//
// Usage: pgx-client DSN. Prints one "key=value" line per check; exits non-zero on any failure.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: pgx-client DSN")
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, os.Args[1])
	if err != nil {
		fail("connect: %v", err)
	}
	defer conn.Close(ctx)

	var user string
	var sum int
	// Extended protocol with a parameter (pgx prepares and caches the statement).
	if err := conn.QueryRow(ctx, "select current_user, $1::int + 1", 41).Scan(&user, &sum); err != nil {
		fail("query: %v", err)
	}
	fmt.Printf("user=%s\nsum=%d\n", user, sum)

	// A context deadline makes pgx send a CancelRequest for the running query.
	qctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = conn.Exec(qctx, "select pg_sleep(30)")
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		fail("pg_sleep(30) was not cancelled")
	case errors.As(err, &pgErr) && pgErr.Code == "57014":
		fmt.Printf("cancel=57014\n")
	case errors.Is(err, context.DeadlineExceeded) || pgconn.Timeout(err):
		// pgx reports the context error; the server's 57014 is what the cancel produced.
		fmt.Printf("cancel=timeout\n")
	default:
		fail("cancel: unexpected error %v", err)
	}
	fmt.Printf("cancel_ms=%d\n", time.Since(start).Milliseconds())
}
