// Package sqlite opens certfleet's store on an embedded SQLite database
// (pure Go, modernc.org/sqlite) in WAL mode and applies its migrations.
//
// It is not for several server processes: SQLite serves one node. Use package
// postgres for more.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

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

// Open opens (creating if needed) the database file at path and migrates it.
func Open(ctx context.Context, path string) (*sqlstore.DB, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db := sql.OpenDB(stmtConnector{drv: &sqlite.Driver{}, dsn: "file:" + path + "?" + q.Encode()})
	// One writer at a time is all SQLite allows; a small pool keeps readers
	// concurrent without piling up lock waits. Every connection stays open
	// (database/sql keeps 2 idle by default and closed the rest, so a busy
	// server opened a connection, with its pragmas, and lost its prepared
	// statements many times a second).
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	s := sqlstore.New(db, sqlstore.Dialect{Name: "sqlite", IsUnique: isUnique, OneWriter: true,
		NowMS: `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`})
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := s.Migrate(ctx, Migrations()); err != nil {
		db.Close()
		return nil, err
	}
	// The database holds sealed secrets and metadata: keep it private.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Chmod(path+suffix, 0o600)
	}
	return s, nil
}

func isUnique(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		c := se.Code()
		return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}
