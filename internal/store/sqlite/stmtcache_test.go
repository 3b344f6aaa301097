package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"

	msqlite "modernc.org/sqlite"
)

// TestStmtCache runs statements through one cached connection in the ways
// that could trip a cache: the same text again with other arguments, the
// same text while its rows are still open, a failing statement run again,
// and more texts than the cache holds.
func TestStmtCache(t *testing.T) {
	db := sql.OpenDB(stmtConnector{drv: &msqlite.Driver{}, dsn: "file:" + filepath.Join(t.TempDir(), "c.db")})
	defer db.Close()
	db.SetMaxOpenConns(1) // every statement on the one connection
	ctx := t.Context()
	mustExec := func(q string, args ...any) {
		t.Helper()
		if _, err := db.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustExec(`CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL UNIQUE)`)
	const insert = `INSERT INTO t (id, v) VALUES (?, ?)`
	for i := 1; i <= 5; i++ {
		mustExec(insert, i, fmt.Sprint("v", i))
	}

	// A unique violation fails, and the same text then works again.
	if _, err := db.ExecContext(ctx, insert, 6, "v1"); err == nil {
		t.Fatal("duplicate insert succeeded")
	}
	mustExec(insert, 6, "v6")

	// The same query inside a loop over its own open rows.
	const byID = `SELECT v FROM t WHERE id >= ? ORDER BY id`
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := tx.QueryContext(ctx, byID, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer, inner []string
	for rows.Next() {
		var v string
		rows.Scan(&v)
		outer = append(outer, v)
		var first string
		if err := tx.QueryRowContext(ctx, byID, 6).Scan(&first); err != nil {
			t.Fatalf("nested query: %v", err)
		}
		inner = append(inner, first)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	tx.Commit()
	if fmt.Sprint(outer) != "[v1 v2 v3 v4 v5 v6]" || len(inner) != 6 || inner[5] != "v6" {
		t.Fatalf("outer rows %v, nested %v", outer, inner)
	}

	// More texts than the cache holds: the oldest are closed, and they run
	// again when asked for.
	for i := range stmtCacheSize + 10 {
		var n int
		if err := db.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) + %d FROM t`, i)).Scan(&n); err != nil || n != 6+i {
			t.Fatalf("query %d: %d, %v", i, n, err)
		}
	}
	var v string
	if err := db.QueryRowContext(ctx, byID, 2).Scan(&v); err != nil || v != "v2" {
		t.Fatalf("evicted query again: %q, %v", v, err)
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.Raw(func(dc any) error {
		if n := dc.(*stmtConn).lru.Len(); n > stmtCacheSize {
			t.Errorf("cache holds %d statements, want at most %d", n, stmtCacheSize)
		}
		return nil
	})
}
