package sqlstore

import (
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

func TestMigrationsInOrder(t *testing.T) {
	names, versions, err := migrations(fstest.MapFS{
		"0010_b.sql": {Data: []byte("SELECT 1;")},
		"0002_a.sql": {Data: []byte("SELECT 1;")},
		"README.md":  {Data: []byte("not a migration")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"0002_a.sql", "0010_b.sql"}) || !slices.Equal(versions, []int{2, 10}) {
		t.Fatalf("migrations = %v %v", names, versions)
	}
}

// TestMigrationsShareVersion: the database records versions only, so a
// second file with a version would be skipped as applied; it is an error.
func TestMigrationsShareVersion(t *testing.T) {
	_, _, err := migrations(fstest.MapFS{
		"0016_nonce_epoch.sql":  {Data: []byte("SELECT 1;")},
		"0016_worker_pages.sql": {Data: []byte("SELECT 1;")},
	})
	if err == nil || !strings.Contains(err.Error(), "0016_nonce_epoch.sql and 0016_worker_pages.sql share version 16") {
		t.Fatalf("err = %v, want the two files named", err)
	}
	if _, _, err := migrations(fstest.MapFS{"x_init.sql": {}}); err == nil {
		t.Fatal("a migration without a number was accepted")
	}
}
