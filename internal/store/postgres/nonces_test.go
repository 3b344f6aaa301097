package postgres_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
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

// TestCarriedNonces: a signed read's nonce recorded by the read's own first
// statement (sqlstore's carried nonces). Fresh: the read answers and every
// node then refuses the nonce. A replay, or a nonce signed before the
// server started: the read fails, reads nothing and writes nothing, and the
// verdict says why. A nonce no statement carried is left for the batch, and
// no later statement carries it.
func TestCarriedNonces(t *testing.T) {
	url := testutil.PostgresURL(t)
	a, err := postgres.Open(t.Context(), url)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	defer a.Close()
	b, err := postgres.Open(t.Context(), url) // another node
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	defer b.Close()
	acct, err := a.AccountEnsure(t.Context(), "carried")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"one", "two", "three"} {
		c := store.Certificate{AccountID: acct, Name: name, CertPEM: "pem-" + name, KeyEnc: []byte("k"),
			CommonName: name + ".example.com", NotAfter: time.Now().Add(time.Hour)}
		if err := a.CertificateCreate(t.Context(), &c); err != nil {
			t.Fatal(err)
		}
	}
	// read lists the account's certificates carrying n; it returns how many
	// it read and the carried verdict ("none" when not carried).
	read := func(n store.NonceParams, before func(context.Context)) (int, string, error) {
		ctx, c := a.CarryNonce(t.Context(), n)
		if c == nil {
			t.Fatalf("CarryNonce(%v) carries nothing", n)
		}
		if before != nil {
			before(ctx)
		}
		certs, total, err := a.CertificateList(ctx, store.CertificateListParams{AccountID: acct, Limit: 10})
		if err == nil && int64(len(certs)) != total {
			t.Fatalf("listed %d certificates of %d", len(certs), total)
		}
		v, carried := c.Outcome()
		if !carried {
			return len(certs), "none", err
		}
		return len(certs), v.String(), err
	}
	now := time.Now()
	fresh := storetest.SignedNonce("key:carried", now)
	if n, v, err := read(fresh, nil); err != nil || n != 3 || v != "fresh" {
		t.Fatalf("fresh nonce: read %d, %v, verdict %s; want 3, nil, fresh", n, err, v)
	}
	storetest.CheckVerdicts(t, b, "its replay on another node", "[used]", fresh)
	if n, v, err := read(fresh, nil); err == nil || n != 0 || v != "used" {
		t.Fatalf("replayed nonce: read %d, %v, verdict %s; want 0, an error, used", n, err, v)
	}
	ahead := storetest.SignedNonce("key:ahead", now.Add(10*time.Minute)) // committed synchronously
	if n, v, err := read(ahead, nil); err != nil || n != 3 || v != "fresh" {
		t.Fatalf("nonce signed ahead: read %d, %v, verdict %s; want 3, nil, fresh", n, err, v)
	}
	storetest.CheckVerdicts(t, b, "the nonce signed ahead, replayed", "[used]", ahead)

	early := storetest.SignedNonce("key:early", time.Unix(1_000_000_000, 0)) // before any server start here
	if n, v, err := read(early, nil); err == nil || n != 0 || v != "before-epoch" {
		t.Fatalf("nonce signed before the server started: read %d, %v, verdict %s; want 0, an error, before-epoch", n, err, v)
	}
	storetest.CheckVerdicts(t, b, "the early nonce, unsigned (not in the table)", "[fresh]", store.NonceParams{Nonce: "key:early", Expires: now.Add(time.Hour)})

	// Decided another way before any read: no statement carries it after.
	late := storetest.SignedNonce("key:late", now)
	if n, v, err := read(late, func(ctx context.Context) {
		if _, carried := store.CarriedNonceFrom(ctx).Outcome(); carried {
			t.Fatal("Outcome before any read says carried")
		}
	}); err != nil || n != 3 || v != "none" {
		t.Fatalf("nonce closed before the read: read %d, %v, verdict %s; want 3, nil, none", n, err, v)
	}
	storetest.CheckVerdicts(t, b, "the nonce no statement carried", "[fresh]", late)
}
