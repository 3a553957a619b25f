// Package lakebasepgx wires a lakebase.Client into pgx v5: every new physical connection — of a
// pgx.Conn, a pgxpool.Pool or a database/sql DB — gets the library's current password, so a pool
// keeps opening connections after the first token expired.
//
// The connection string names host, dbname, user (the client's identity, see
// lakebase.Client.Identity) and sslmode; it needs no password.
package lakebasepgx

import (
	"context"
	"database/sql"
	"database/sql/driver"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	lakebase "github.com/liblakebase/lakebase-go"
)

// BeforeConnect returns a hook that sets the connection's password from client (nil: the default
// client). It fits pgxpool.Config.BeforeConnect and stdlib.OptionBeforeConnect.
func BeforeConnect(client *lakebase.Client) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cfg *pgx.ConnConfig) error {
		c, err := resolve(client)
		if err != nil {
			return err
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
	hook := BeforeConnect(client)
	prev := cfg.BeforeConnect
	cfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if prev != nil {
			if err := prev(ctx, cc); err != nil {
				return err
			}
		}
		return hook(ctx, cc)
	}
}

// NewPool is pgxpool.NewWithConfig for connString with ConfigurePool applied.
func NewPool(ctx context.Context, client *lakebase.Client, connString string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	ConfigurePool(cfg, client)
	return pgxpool.NewWithConfig(ctx, cfg)
}

// Connect opens one pgx.Conn for connString with the current password.
func Connect(ctx context.Context, client *lakebase.Client, connString string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	if err := BeforeConnect(client)(ctx, cfg); err != nil {
		return nil, err
	}
	return pgx.ConnectConfig(ctx, cfg)
}

// Connector returns a database/sql driver.Connector (pgx's stdlib) that fetches the password for
// every new connection: sql.OpenDB(connector). opts are passed to stdlib.GetConnector after the
// password hook (e.g. stdlib.OptionAfterConnect).
func Connector(client *lakebase.Client, connString string, opts ...stdlib.OptionOpenDB) (driver.Connector, error) {
	cfg, err := pgx.ParseConfig(connString)
	if err != nil {
		return nil, err
	}
	all := append([]stdlib.OptionOpenDB{stdlib.OptionBeforeConnect(BeforeConnect(client))}, opts...)
	return stdlib.GetConnector(*cfg, all...), nil
}

// OpenDB is sql.OpenDB(Connector(client, connString, opts...)).
func OpenDB(client *lakebase.Client, connString string, opts ...stdlib.OptionOpenDB) (*sql.DB, error) {
	conn, err := Connector(client, connString, opts...)
	if err != nil {
		return nil, err
	}
	return sql.OpenDB(conn), nil
}

func resolve(c *lakebase.Client) (*lakebase.Client, error) {
	if c != nil {
		return c, nil
	}
	return lakebase.DefaultClient()
}
