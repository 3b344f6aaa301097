package sqlite_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/store/storetest"
	"github.com/certfleet/certfleet/internal/testutil"
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

// TestStoreLocalNonces runs the conformance suite as serve uses the store:
// nonces answered from memory and written behind (StartLocalNonces).
func TestStoreLocalNonces(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openServing(t, filepath.Join(t.TempDir(), "certfleet.db")) })
}

// openServing opens path as serve does; the caller closes it (a test that
// plays a crash does not).
func openServing(t *testing.T, path string) *sqlstore.DB {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatalf("sqlite.Open(%s): %v", path, err)
	}
	if err := s.StartLocalNonces(t.Context()); err != nil {
		s.Close()
		t.Fatalf("StartLocalNonces: %v", err)
	}
	return s
}

// TestNoncesAcrossRestart: nonces answered from memory are refused after a
// clean restart (Close wrote them), including one signed far ahead (recorded
// durably at once) and one recorded without a signing time.
func TestNoncesAcrossRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certfleet.db")
	s := openServing(t, path)
	now := time.Now()
	n, ahead := storetest.SignedNonce("key:now", now), storetest.SignedNonce("key:ahead", now.Add(10*time.Minute))
	storetest.CheckVerdicts(t, s, "first use", "[fresh fresh]", n, ahead)
	if err := s.NonceUse(t.Context(), "key:plain", now.Add(time.Hour)); err != nil {
		t.Fatalf("NonceUse: %v", err)
	}
	storetest.CheckVerdicts(t, s, "replay in the same run", "[used used]", n, ahead)
	s.Close()

	s = openServing(t, path)
	defer s.Close()
	storetest.CheckVerdicts(t, s, "replay after a restart", "[used used]", n, ahead)
	if err := s.NonceUse(t.Context(), "key:plain", now.Add(time.Hour)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("NonceUse(key:plain) after a restart = %v, want ErrConflict", err)
	}
	storetest.CheckVerdicts(t, s, "a new nonce", "[fresh]", storetest.SignedNonce("key:new", time.Now()))
}

// TestNonceLostInCrashRefused plays a crash: the first run never closes,
// and a nonce it answered from memory is missing from the table (as if the
// process died before writing it). The next start finds the run unclean and
// refuses every nonce signed before the last lease, that one included; a
// nonce signed after the lease is recorded.
func TestNonceLostInCrashRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "certfleet.db")
	crashed := openServing(t, path)
	t.Cleanup(func() { crashed.Close() })
	now := time.Now()
	lost := storetest.SignedNonce("key:lost", now)
	storetest.CheckVerdicts(t, crashed, "first use", "[fresh]", lost)
	// Wait for the write behind, then undo it: the nonce is lost.
	testutil.WaitFor(t, 10*time.Second, "the nonce written behind", func() (bool, error) {
		n, err := crashed.SQL().ExecContext(t.Context(), `DELETE FROM nonces WHERE nonce = ?`, lost.Nonce)
		if err != nil {
			return false, err
		}
		k, err := n.RowsAffected()
		return k == 1, err
	})

	var lease int64
	if err := crashed.SQL().QueryRowContext(t.Context(), `SELECT lease_ms FROM nonce_epoch`).Scan(&lease); err != nil {
		t.Fatal(err)
	}
	s := openServing(t, path)
	defer s.Close()
	storetest.CheckVerdicts(t, s, "replay after the crash", "[before-epoch]", lost)
	storetest.CheckVerdicts(t, s, "signed after the last lease", "[fresh]", storetest.SignedNonce("key:after", time.UnixMilli(lease+1)))
}

// TestNonceUseNow: what memory alone decides is answered at once, and
// agrees with NonceUseMany; a nonce that must be inserted first (signed
// ahead of the lease, or of unknown time) is left alone for NonceUseMany.
// A store not answering from memory answers nothing at once.
func TestNonceUseNow(t *testing.T) {
	now := func(s *sqlstore.DB, n store.NonceParams) string {
		v, ok := s.NonceUseNow(n)
		if !ok {
			return "later"
		}
		return v.String()
	}
	path := filepath.Join(t.TempDir(), "certfleet.db")
	s := openServing(t, path)
	fresh, ahead := storetest.SignedNonce("key:now", time.Now()), storetest.SignedNonce("key:ahead", time.Now().Add(10*time.Minute))
	unknown := store.NonceParams{Nonce: "key:unknown", Expires: time.Now().Add(time.Hour)}
	for _, c := range []struct {
		n    store.NonceParams
		want string
	}{{fresh, "fresh"}, {fresh, "used"}, {ahead, "later"}, {ahead, "later"}, {unknown, "later"}} {
		if got := now(s, c.n); got != c.want {
			t.Fatalf("NonceUseNow(%s) = %s, want %s", c.n.Nonce, got, c.want)
		}
	}
	storetest.CheckVerdicts(t, s, "after NonceUseNow", "[used fresh fresh]", fresh, ahead, unknown)
	if got := now(s, ahead); got != "used" {
		t.Fatalf("NonceUseNow(%s) after NonceUseMany = %s, want used", ahead.Nonce, got)
	}
	s.Close()
	if got := now(s, storetest.SignedNonce("key:closed", time.Now())); got != "later" {
		t.Fatalf("NonceUseNow on a closed store = %s, want later (NonceUseMany reports the error)", got)
	}

	plain, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	if got := now(plain, storetest.SignedNonce("key:plain", time.Now())); got != "later" {
		t.Fatalf("NonceUseNow without StartLocalNonces = %s, want later", got)
	}
	storetest.CheckVerdicts(t, plain, "replay in the table", "[used]", fresh)
}
