// Package testutil holds helpers shared by certfleet's tests: a fresh
// PostgreSQL database per test run, and the rule for when a missing
// component skips a test (locally) or fails it (in CI).
package testutil

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver
)

// PostgresAdminURL is the server the tests create databases on; override
// with CERTFLEET_TEST_POSTGRES (scripts/dev-postgres.sh prints it).
func PostgresAdminURL() string {
	if u := os.Getenv("CERTFLEET_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// Missing reports a component a test needs but cannot reach: in CI
// (CI=true) the test fails, elsewhere it is skipped with how to get it.
func Missing(t testing.TB, what, howToGet string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is required in CI but unavailable: %s", what, howToGet)
	}
	t.Skipf("%s unavailable (%s); skipping", what, howToGet)
}

// PostgresURL creates a fresh, empty database for this test and returns its
// URL; the database is dropped when the test ends.
func PostgresURL(t testing.TB) string {
	t.Helper()
	admin := PostgresAdminURL()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	db, err := sql.Open("pgx", admin)
	if err == nil {
		err = db.PingContext(ctx)
	}
	if err != nil {
		Missing(t, "PostgreSQL at "+admin, "start a throwaway one with: eval \"$(scripts/dev-postgres.sh)\" ("+err.Error()+")")
		return ""
	}
	defer db.Close()
	b := make([]byte, 6)
	rand.Read(b)
	name := "certfleet_test_" + hex.EncodeToString(b)
	if _, err := db.ExecContext(ctx, `CREATE DATABASE `+name); err != nil {
		t.Fatalf("create database %s: %v", name, err)
	}
	t.Cleanup(func() {
		db, err := sql.Open("pgx", admin)
		if err != nil {
			return
		}
		defer db.Close()
		db.Exec(`DROP DATABASE IF EXISTS ` + name + ` WITH (FORCE)`)
	})
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("bad CERTFLEET_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}
