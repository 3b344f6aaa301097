// Package sqlstore is the one implementation of store.Store, written against
// database/sql and shared by the SQLite and PostgreSQL engines. Each engine
// supplies a Dialect (placeholders, row locking, error classification) and its
// own numbered migrations.
//
// It is not meant to be used directly: open a store through package sqlite or
// package postgres.
package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Dialect holds what differs between engines.
type Dialect struct {
	// Name is "sqlite" or "postgres".
	Name string
	// Numbered rewrites "?" placeholders as $1, $2… when true.
	Numbered bool
	// SkipLocked is appended to claim SELECTs ("FOR UPDATE SKIP LOCKED").
	SkipLocked string
	// IsUnique reports whether err is a uniqueness violation.
	IsUnique func(error) bool
	// LockMigrations serialises migrations across processes; may be nil.
	LockMigrations func(ctx context.Context, conn *sql.Conn) (unlock func(), err error)
	// NowMS is an SQL expression for the database's clock in epoch
	// milliseconds (leadership leases are timed by it).
	NowMS string
	// OneWriter: the engine runs one write at a time (SQLite). Writers then
	// queue in the process (DB.tx, DB.exec) instead of each holding a
	// pooled connection while the database's busy handler makes it wait.
	OneWriter bool
	// Notify is the statement sending a wake-up, with placeholders for the
	// channel and the payload, and Listen receives them on a dedicated
	// connection until ctx ends or the connection fails, calling ready once
	// listening and got with each payload. Without them (one node, SQLite)
	// wake-ups are delivered in-process, to the listeners of one DB.
	Notify string
	Listen func(ctx context.Context, channel string, ready func(), got func(payload string)) error
	// RestartedMS is an SQL expression for when the database server last
	// started, in epoch milliseconds by its clock. When set, NonceUseMany
	// commits asynchronously and takes it as its epoch (nonces.go).
	RestartedMS string
}

// DB implements store.Store.
type DB struct {
	db *sql.DB
	d  Dialect
	// queries caches rebound SQL text.
	rebind map[string]string
	wake   hub           // in-process wake-ups when the dialect has no Listen
	writer chan struct{} // OneWriter: held by the write in progress
	// local, when set (StartLocalNonces), holds this node's nonces in memory
	// and writes them behind the answer: localnonces.go.
	local *localNonces
}

var _ store.Store = (*DB)(nil)

// New wraps an open database. Call Migrate before use.
func New(db *sql.DB, d Dialect) *DB {
	s := &DB{db: db, d: d}
	if d.OneWriter {
		s.writer = make(chan struct{}, 1)
	}
	return s
}

// write waits for the one writer's turn (Dialect.OneWriter; otherwise it
// returns at once) and returns its release. Waiting here, not in SQLite's
// busy handler, matters beyond the sleeps it saves: a transaction that
// reads through the pool while it writes (JobCreate's chunks) would
// otherwise find every pooled connection held by writers waiting for it.
func (s *DB) write(ctx context.Context) (release func(), err error) {
	if s.writer == nil {
		return func() {}, nil
	}
	select {
	case s.writer <- struct{}{}:
		return func() { <-s.writer }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("store: %w", ctx.Err())
	}
}

// SQL returns the underlying database, for tests that must reach past the
// contract (a competing transaction, a row as a crashed node leaves it).
// Code outside package store and its engines must not use it: what it needs
// from the database belongs in store.Store.
func (s *DB) SQL() *sql.DB { return s.db }

// Ping checks the database answers.
func (s *DB) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close closes the database, first writing the nonces still held in
// memory (StartLocalNonces).
func (s *DB) Close() error {
	if s.local != nil {
		s.local.close()
	}
	return s.db.Close()
}

// q turns "?" placeholders into the dialect's.
func (s *DB) q(query string) string {
	if !s.d.Numbered {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func (s *DB) exec(ctx context.Context, x querier, query string, args ...any) (int64, error) {
	if x == s.db {
		release, err := s.write(ctx)
		if err != nil {
			return 0, err
		}
		defer release()
	}
	res, err := x.ExecContext(ctx, s.q(query), args...)
	if err != nil {
		return 0, s.wrap(err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: %w", err)
	}
	return n, nil
}

func (s *DB) wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case s.d.IsUnique != nil && s.d.IsUnique(err):
		return fmt.Errorf("%w: %v", store.ErrConflict, err)
	default:
		return fmt.Errorf("store: %w", err)
	}
}

// tx runs fn in a transaction, committing when fn returns nil.
func (s *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	release, err := s.write(ctx)
	if err != nil {
		return err
	}
	defer release()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.wrap(err)
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return s.wrap(err)
	}
	return nil
}

// Migrate applies the numbered migrations in fsys (files NNNN_name.sql) that
// the database has not seen yet, each in its own transaction.
func (s *DB) Migrate(ctx context.Context, fsys fs.FS) error {
	names, versions, err := migrations(fsys)
	if err != nil {
		return err
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	if s.d.LockMigrations != nil {
		unlock, err := s.d.LockMigrations(ctx, conn)
		if err != nil {
			return fmt.Errorf("store: migrate: lock: %w", err)
		}
		defer unlock()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_ms BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	for i, name := range names {
		v := versions[i]
		var seen int
		if err := conn.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), v).Scan(&seen); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		if seen > 0 {
			continue
		}
		body, err := fs.ReadFile(fsys, name)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		for _, stmt := range splitSQL(string(body)) {
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("store: migration %s: %w", name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)`), v, ms(time.Now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
	}
	return nil
}

// migrations lists fsys's migrations in order with their versions. Two
// files with one version are an error: the database records versions only,
// so the second would be taken as applied and silently never run (two
// branches that each added "0016_…" would merge into exactly that).
func migrations(fsys fs.FS) ([]string, []int, error) {
	names, err := fs.Glob(fsys, "*.sql")
	if err != nil {
		return nil, nil, fmt.Errorf("store: migrate: %w", err)
	}
	sort.Strings(names)
	versions := make([]int, len(names))
	byVersion := map[int]string{}
	for i, name := range names {
		v, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return nil, nil, fmt.Errorf("store: migrate: bad migration name %q", name)
		}
		if other, ok := byVersion[v]; ok {
			return nil, nil, fmt.Errorf("store: migrate: migrations %s and %s share version %d", other, name, v)
		}
		byVersion[v], versions[i] = name, v
	}
	return names, versions, nil
}

// MigrationsCurrent reports whether every migration in fsys has been applied.
func (s *DB) MigrationsCurrent(ctx context.Context, fsys fs.FS) (bool, error) {
	names, _, err := migrations(fsys)
	if err != nil {
		return false, err
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
		return false, s.wrap(err)
	}
	return n >= len(names), nil
}

// splitSQL splits a migration into statements on semicolons that end a line,
// dropping comment-only lines.
func splitSQL(body string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(body, "\n") {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(t, ";") {
			out = append(out, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
	}
	if strings.TrimSpace(cur.String()) != "" {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic("sqlstore: marshal: " + err.Error())
	}
	return string(b)
}

func fromJSON[T any](s string) T {
	var v T
	if s != "" {
		_ = json.Unmarshal([]byte(s), &v)
	}
	return v
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// like escapes a keyword for a LIKE pattern with ESCAPE '\'.
func like(keyword string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + strings.ToLower(r.Replace(keyword)) + "%"
}

func limitOffset(limit, offset int) string {
	if limit <= 0 {
		return ""
	}
	return fmt.Sprintf(" LIMIT %d OFFSET %d", limit, offset)
}

func inList(n int) string {
	if n == 0 {
		return "(NULL)"
	}
	return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")"
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, v := range ids {
		out[i] = v
	}
	return out
}
