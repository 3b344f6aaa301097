package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/storetest"
)

// TestStore runs the store conformance suite on a fresh SQLite file per subtest.
func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		path := filepath.Join(t.TempDir(), "certfleet.db")
		s, err := sqlite.Open(t.Context(), path)
		if err != nil {
			t.Fatalf("sqlite.Open(%s): %v", path, err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// TestReopen checks that opening an existing database keeps its data and
// does not re-apply migrations.
func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certfleet.db")
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	id, err := s.AccountEnsure(t.Context(), "acme")
	if err != nil {
		t.Fatalf("AccountEnsure: %v", err)
	}
	s.Close()

	s, err = sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open (again): %v", err)
	}
	defer s.Close()
	current, err := s.MigrationsCurrent(t.Context(), sqlite.Migrations())
	if err != nil || !current {
		t.Errorf("MigrationsCurrent = %v, %v; want true", current, err)
	}
	again, err := s.AccountEnsure(t.Context(), "acme")
	if err != nil || again != id {
		t.Errorf("AccountEnsure after reopen = %d, %v; want %d", again, err, id)
	}
}

// BenchmarkWorkerPages: go test ./internal/store/sqlite -run '^$' -bench WorkerPages
func BenchmarkWorkerPages(b *testing.B) {
	path := filepath.Join(b.TempDir(), "certfleet.db")
	s, err := sqlite.Open(b.Context(), path)
	if err != nil {
		b.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	defer s.Close()
	storetest.BenchmarkWorkerPages(b, s, 100_000)
}
