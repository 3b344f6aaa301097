package postgres_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/testutil"
)

// signedNonce is a nonce as the API records it: signed at signed, kept
// for the signature window.
func signedNonce(nonce string, signed time.Time) store.NonceParams {
	return store.NonceParams{Nonce: nonce, Signed: signed, Expires: signed.Add(16 * time.Minute)}
}

func verdicts(t *testing.T, s store.Store, what string, want string, ns ...store.NonceParams) {
	t.Helper()
	v, err := s.NonceUseMany(t.Context(), ns)
	if err != nil {
		t.Fatalf("%s: NonceUseMany: %v", what, err)
	}
	if got := fmt.Sprint(v); got != want {
		t.Fatalf("%s: verdicts %s, want %s", what, got, want)
	}
}

// TestNoncesAcrossNodesAndRestarts: two nodes on one PostgreSQL database.
// A nonce one node records (committed asynchronously) is refused by the
// other as soon as the first has answered, and by a node started after the
// first stopped; so is one signed far ahead (committed synchronously).
func TestNoncesAcrossNodesAndRestarts(t *testing.T) {
	url := testutil.PostgresURL(t)
	openNode := func() *sqlstore.DB {
		s, err := postgres.Open(t.Context(), url)
		if err != nil {
			t.Fatalf("postgres.Open: %v", err)
		}
		return s
	}
	a, b := openNode(), openNode()
	defer b.Close()
	now := time.Now()
	n, ahead := signedNonce("key:now", now), signedNonce("key:ahead", now.Add(10*time.Minute))
	verdicts(t, a, "node A", "[fresh fresh]", n, ahead)
	verdicts(t, b, "replayed on node B", "[used used]", n, ahead)
	a.Close()

	c := openNode()
	defer c.Close()
	verdicts(t, c, "replayed on a node started after A stopped", "[used used]", n, ahead)
	verdicts(t, c, "a new nonce on it", "[fresh]", signedNonce("key:new", time.Now()))
}

// TestNonceLostInCrashRefused: the epoch is the server's start. A nonce
// committed asynchronously just before a crash of PostgreSQL may be lost;
// the restarted server must refuse it. The test cannot crash the shared
// server, so it gives the store a dialect whose server "started" now, and a
// nonce that is not in the table (as if lost): it must come back
// NonceBeforeEpoch, not fresh. A nonce signed past the epoch (asyncSlack)
// is recorded.
func TestNonceLostInCrashRefused(t *testing.T) {
	url := testutil.PostgresURL(t)
	first, err := postgres.Open(t.Context(), url) // migrates
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	first.Close()
	d := postgres.Dialect(url)
	d.RestartedMS = d.NowMS
	db, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	s := sqlstore.New(db, d)
	defer s.Close()
	now := time.Now()
	verdicts(t, s, "signed a second before the restart", "[before-epoch]", signedNonce("key:lost", now.Add(-time.Second)))
	verdicts(t, s, "signed past the epoch", "[fresh]", signedNonce("key:later", now.Add(time.Minute)))
	verdicts(t, s, "its replay", "[used]", signedNonce("key:later", now.Add(time.Minute)))
}
