package postgres_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/store/storetest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// open returns a store on a fresh database, closed before the database is dropped.
func open(t *testing.T) *sqlstore.DB {
	t.Helper()
	s, err := postgres.Open(t.Context(), testutil.PostgresURL(t))
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// TestStore runs the store conformance suite on a fresh PostgreSQL database
// per subtest. It needs PostgreSQL (CERTFLEET_TEST_POSTGRES, default
// 127.0.0.1:5432): skipped without it locally, failed in CI.
func TestStore(t *testing.T) {
	if testing.Short() {
		t.Skip("the conformance suite on PostgreSQL takes a minute (a database per case); -short runs it on SQLite")
	}
	testutil.PostgresURL(t) // one skip (or CI failure) rather than one per subtest
	storetest.Run(t, func(t *testing.T) store.Store { return open(t) })
}

// TestClaimRaceOnResource pins what a claim does when another transaction
// takes the same resource between the claim's read and its write: the
// workers_one_active unique index stops it, and the error must be
// store.ErrConflict so the engine retries.
func TestClaimRaceOnResource(t *testing.T) {
	cases := []struct {
		desc   string
		commit bool // whether the competing transaction commits
		want   error
	}{
		{desc: "competitor commits", commit: true, want: store.ErrConflict},
		{desc: "competitor rolls back", commit: false},
	}
	for _, tc := range cases {
		t.Run(tc.desc, func(t *testing.T) {
			s := open(t)
			ctx := t.Context()
			now := time.Now()
			acct, err := s.AccountEnsure(ctx, "acme")
			must(t, err)
			c := store.Certificate{AccountID: acct, Name: "c", KeyEnc: []byte("k"), SANs: []string{"a"}}
			must(t, s.CertificateCreate(ctx, &c))
			r := store.Resource{AccountID: acct, CloudName: "aliyun", CloudProduct: "cdn", Name: "web", Config: "{}"}
			must(t, s.ResourceCreate(ctx, &r))
			var workers []int64
			for range 2 { // two jobs on the same resource
				j := store.Job{AccountID: acct, Name: "j", JobType: "deploy", CertIDs: []int64{c.ID}, ResourceIDs: []int64{r.ID}, Config: "{}"}
				must(t, s.JobCreate(ctx, &j, store.WorkersOf([]store.Worker{{ResourceID: r.ID, CertID: c.ID, CloudName: "aliyun", CloudProduct: "cdn"}})))
				must(t, s.JobSetStatus(ctx, store.JobSetStatusParams{AccountID: acct, JobID: j.ID, From: []store.JobStatus{store.JobEditing},
					To: store.JobPending, ScheduleTime: now, Now: now}))
				ws, _, err := s.WorkerList(ctx, store.WorkerListParams{AccountID: acct, JobID: j.ID})
				must(t, err)
				workers = append(workers, ws[0].ID)
			}
			_, err = s.JobStartDue(ctx, now)
			must(t, err)

			// The competitor leases the first worker and holds its transaction open.
			tx, err := s.SQL().BeginTx(ctx, nil)
			must(t, err)
			defer tx.Rollback()
			_, err = tx.ExecContext(ctx, `UPDATE workers SET status = 'processing', active = 1, lease_owner = 'competitor',
				lease_token = lease_token + 1, lease_expires_ms = $1 WHERE id = $2`, now.Add(time.Hour).UnixMilli(), workers[0])
			must(t, err)

			type result struct {
				ws  []store.Worker
				err error
			}
			done := make(chan result, 1)
			go func() {
				ws, err := s.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: "claimer", Now: now, LeaseUntil: now.Add(time.Minute), Limit: 10})
				done <- result{ws, err}
			}()
			waitForLockWait(t, s.SQL())
			if tc.commit {
				must(t, tx.Commit())
			} else {
				must(t, tx.Rollback())
			}
			res := <-done
			if tc.want != nil {
				if !errors.Is(res.err, tc.want) {
					t.Fatalf("WorkerClaimDue = %v, %v; want an error wrapping %v", res.ws, res.err, tc.want)
				}
				return
			}
			if res.err != nil || len(res.ws) != 1 || res.ws[0].ID != workers[1] {
				t.Fatalf("WorkerClaimDue = %+v, %v; want worker %d", res.ws, res.err, workers[1])
			}
		})
	}
}

// waitForLockWait waits until some session of this database waits on a lock.
func waitForLockWait(t *testing.T, db *sql.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for {
		var n int
		err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`).Scan(&n)
		if err != nil {
			t.Fatalf("waiting for the claim to block: %v", err)
		}
		if n > 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkWorkerPages: go test ./internal/store/postgres -run '^$' -bench WorkerPages
func BenchmarkWorkerPages(b *testing.B) {
	s, err := postgres.Open(b.Context(), testutil.PostgresURL(b))
	if err != nil {
		b.Fatalf("postgres.Open: %v", err)
	}
	defer s.Close()
	storetest.BenchmarkWorkerPages(b, s, 100_000)
}
