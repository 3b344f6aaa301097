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

// Open connects to the database at url (postgres://…) and migrates it.
func Open(ctx context.Context, url string) (*sqlstore.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	s := sqlstore.New(db, Dialect())
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

// Dialect is PostgreSQL's sqlstore dialect.
func Dialect() sqlstore.Dialect {
	return sqlstore.Dialect{
		Name:       "postgres",
		Numbered:   true,
		SkipLocked: "FOR UPDATE SKIP LOCKED",
		IsUnique:   isUnique,
		LockMigrations: func(ctx context.Context, conn *sql.Conn) (func(), error) {
			if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
				return nil, err
			}
			return func() { conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLockID) }, nil
		},
	}
}

func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
