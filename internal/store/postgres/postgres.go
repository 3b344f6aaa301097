// Package postgres opens certfleet's store on PostgreSQL through pgx and
// applies its migrations, one node at a time (an advisory lock serialises
// nodes that start together).
//
// It is not a connection pooler or a schema tool beyond the embedded
// migrations.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	neturl "net/url"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the embedded migration files.
func Migrations() fs.FS {
	sub, err := fs.Sub(migrations, "migrations")
	if err != nil {
		panic(err)
	}
	return sub
}

// migrationLockID is the advisory lock key held while migrating.
const migrationLockID = 0x63657274666c74 // "certflt"

// DefaultMaxConns is the connections one node opens at most, unless the URL
// sets pool_max_conns.
const DefaultMaxConns = 32

// Open connects to the database at url (postgres://…) and migrates it. The
// URL may set pool_max_conns (the node's connection limit, default
// DefaultMaxConns); it is not passed on to PostgreSQL.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	url, maxConns, err := SplitMaxConns(url)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db.SetMaxOpenConns(maxConns)
	// Idle connections are few: several nodes (and tests) share max_connections.
	db.SetMaxIdleConns(min(maxConns, 8))
	s := sqlstore.New(db, Dialect(url))
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: connect: %w", err)
	}
	if err := s.Migrate(ctx, Migrations()); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Dialect is PostgreSQL's sqlstore dialect for the database at url (where
// wake-ups are listened for on a connection of their own).
func Dialect(url string) sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "postgres",
		Numbered:   true,
		SkipLocked: "FOR UPDATE SKIP LOCKED",
		IsUnique:   isUnique,
		NowMS:      `(extract(epoch from clock_timestamp()) * 1000)::bigint`,
		// A crash of the server is what can lose asynchronously committed
		// nonces, and it always ends in a new start.
		RestartedMS: `(extract(epoch from pg_postmaster_start_time()) * 1000)::bigint`,
		Notify:      `SELECT pg_notify(?, ?)`,
		Listen: func(ctx context.Context, channel string, ready func(), got func(string)) error {
			return listen(ctx, url, channel, ready, got)
		},
		LockMigrations: func(ctx context.Context, conn *sql.Conn) (func(), error) {
			if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
				return nil, err
			}
			return func() { conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockID) }, nil
		},
	}
}

// listen runs LISTEN channel on a connection outside the pool (it is held
// for as long as the node runs) and passes on each notification's payload.
func listen(ctx context.Context, url, channel string, ready func(), got func(string)) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, url)
	cancel()
	if err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return fmt.Errorf("postgres: listen: %w", err)
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("postgres: listen: %w", err)
		}
		got(n.Payload)
	}
}

// isUnique reports the errors that mean "someone else got there first" and
// that a retry resolves: a uniqueness violation, and the deadlocks and
// serialization failures concurrent claims can still meet. sqlstore turns
// them into store.ErrConflict.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "23505", "40P01", "40001":
		return true
	}
	return false
}

// SplitMaxConns takes the pool_max_conns parameter out of a postgres:// URL
// and returns the URL without it and its value (DefaultMaxConns if absent).
func SplitMaxConns(raw string) (string, int, error) {
	u, err := neturl.Parse(raw)
	if err != nil {
		return "", 0, fmt.Errorf("postgres: bad database URL: %w", err)
	}
	q := u.Query()
	v := q.Get("pool_max_conns")
	if v == "" {
		return raw, DefaultMaxConns, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 2 {
		return "", 0, fmt.Errorf("postgres: pool_max_conns=%q: want a number ≥ 2", v)
	}
	q.Del("pool_max_conns")
	u.RawQuery = q.Encode()
	return u.String(), n, nil
}
