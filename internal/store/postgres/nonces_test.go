package postgres_test

import (
	"database/sql"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/store/storetest"
	"github.com/certfleet/certfleet/internal/testutil"
)

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
	n, ahead := storetest.SignedNonce("key:now", now), storetest.SignedNonce("key:ahead", now.Add(10*time.Minute))
	storetest.CheckVerdicts(t, a, "node A", "[fresh fresh]", n, ahead)
	storetest.CheckVerdicts(t, b, "replayed on node B", "[used used]", n, ahead)
	a.Close()

	c := openNode()
	defer c.Close()
	storetest.CheckVerdicts(t, c, "replayed on a node started after A stopped", "[used used]", n, ahead)
	storetest.CheckVerdicts(t, c, "a new nonce on it", "[fresh]", storetest.SignedNonce("key:new", time.Now()))
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
	storetest.CheckVerdicts(t, s, "signed a second before the restart", "[before-epoch]", storetest.SignedNonce("key:lost", now.Add(-time.Second)))
	storetest.CheckVerdicts(t, s, "signed past the epoch", "[fresh]", storetest.SignedNonce("key:later", now.Add(time.Minute)))
	storetest.CheckVerdicts(t, s, "its replay", "[used]", storetest.SignedNonce("key:later", now.Add(time.Minute)))
}
