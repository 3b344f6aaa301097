package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
	"github.com/certfleet/certfleet/internal/testutil"
)

// planRecorder is a store whose every statement's plan comes back to it:
// auto_explain, loaded into each of its sessions, sends each plan as a
// notice.
type planRecorder struct {
	*sqlstore.DB
	mu    sync.Mutex
	plans []string
}

func openPlanRecorder(t *testing.T, url string) *planRecorder {
	t.Helper()
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	r := &planRecorder{}
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
		if strings.HasPrefix(n.Message, "duration:") {
			r.mu.Lock()
			r.plans = append(r.plans, n.Message)
			r.mu.Unlock()
		}
	}
	db := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, `LOAD 'auto_explain'; SET auto_explain.log_min_duration = 0;
			SET auto_explain.log_level = notice; SET auto_explain.log_analyze = off`)
		return err
	}))
	t.Cleanup(func() { db.Close() })
	if err := db.PingContext(t.Context()); err != nil {
		t.Fatalf("a session with auto_explain (LOAD needs a superuser): %v", err)
	}
	r.DB = sqlstore.New(db, postgres.Dialect(url))
	return r
}

// take returns the plans recorded since the last take.
func (r *planRecorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.plans
	r.plans = nil
	return p
}

// scanNode is a plan line that reads workers or resources: the scan's
// kind and the index it uses, if any ("Index Scan using workers_pkey on
// workers", "Seq Scan on workers", "Bitmap Index Scan on workers_pkey").
var scanNode = regexp.MustCompile(`(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan)(?: using (\S+))? on (workers|resources)(?:\s|$)|(Bitmap Index Scan) on ((workers|resources)_\S+)`)

// writes is a plan that updates, inserts or deletes.
var writes = regexp.MustCompile(`(?m)^\s*(->\s+)?(Update|Insert|Delete) on `)

// sortNode is a plan's Sort node.
var sortNode = regexp.MustCompile(`^\s*(->\s+)?Sort\s+\(`)

// TestPlansWithoutStatistics: the engine's hot statements — the claim, the
// lease renewal, the next due time, the outcome batch, the claim's resource
// read — find their rows through the indexes meant for them on tables
// PostgreSQL has never analyzed (a fresh database; autovacuum off here, and
// elsewhere ANALYZE comes only a minute after a big change), with no
// sequential scan, and the claim with no sort. Plans chosen without
// statistics cost 42 ms a claim and several ms an outcome batch at 10,000
// runnable workers (docs/benchmarks.md, E11); this keeps them from coming
// back.
func TestPlansWithoutStatistics(t *testing.T) {
	url := testutil.PostgresURL(t)
	s, err := postgres.Open(t.Context(), url) // migrates
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	acct, err := s.AccountEnsure(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	const n, claim = 5000, 16
	// The job's resources, made in one statement (ResourceCreate checks each one).
	if _, err := s.SQL().ExecContext(ctx, `INSERT INTO resources (id, account_id, cloud_name, cloud_product, domain,
		cloud_access_id, name, region_id, instance_id, listener_port, config, created_ms, modified_ms)
		SELECT i, $1, 'webhook', 'WEBHOOK', 'r' || i || '.example.test', 0, '', '', '', '', '{}', 0, 0
		FROM generate_series(1, $2::bigint) AS i`, acct, n); err != nil {
		t.Fatalf("resources: %v", err)
	}
	j := store.Job{AccountID: acct, Name: "big", JobType: "deploy", Config: `{}`}
	err = s.JobCreate(ctx, &j, func(emit func([]store.Worker) error) error {
		ws := make([]store.Worker, n)
		for i := range ws {
			ws[i] = store.Worker{ResourceID: int64(i + 1), CertID: 1, CloudName: "webhook", CloudProduct: "WEBHOOK"}
		}
		return emit(ws)
	})
	if err != nil {
		t.Fatalf("JobCreate: %v", err)
	}
	now := time.Now()
	if err := s.JobSetStatus(ctx, store.JobSetStatusParams{AccountID: acct, JobID: j.ID,
		From: []store.JobStatus{store.JobEditing}, To: store.JobPending, Now: now}); err != nil {
		t.Fatalf("JobSetStatus: %v", err)
	}
	if started, err := s.JobStartDue(ctx, now); err != nil || len(started) != 1 {
		t.Fatalf("JobStartDue = %v, %v; want the job", started, err)
	}

	r := openPlanRecorder(t, url)
	var ws []store.Worker
	for _, c := range []struct {
		call    string
		run     func() error
		indexes string // the only indexes its reads may use on workers and resources (its writes: primary keys only)
		noSort  bool   // a sort here would be of every runnable worker
	}{
		{"WorkerClaimDue", func() (err error) {
			ws, err = r.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: "n1", Now: now.Add(time.Second), LeaseUntil: now.Add(time.Minute), Limit: claim})
			if err == nil && len(ws) != claim {
				err = fmt.Errorf("claimed %d workers, want %d", len(ws), claim)
			}
			return err
		}, "workers_runnable workers_one_active", true},
		{"WorkerExtendLeases", func() error {
			ls := make([]store.Lease, len(ws))
			for i, w := range ws {
				ls[i] = store.Lease{ID: w.ID, Token: w.LeaseToken}
			}
			renewed, err := r.WorkerExtendLeases(ctx, ls, now.Add(2*time.Minute))
			if err == nil && len(renewed) != len(ws) {
				err = fmt.Errorf("renewed %d leases, want %d", len(renewed), len(ws))
			}
			return err
		}, "", false},
		{"WorkerNextDue", func() error {
			_, ok, err := r.WorkerNextDue(ctx)
			if err == nil && !ok {
				err = errors.New("no worker due, want the unclaimed ones")
			}
			return err
		}, "workers_runnable", false},
		{"ResourceGetMany", func() error {
			ids := make([]int64, len(ws))
			for i, w := range ws {
				ids[i] = w.ResourceID
			}
			_, err := r.ResourceGetMany(ctx, acct, ids)
			return err
		}, "resources_pkey", false},
		{"WorkerFinishMany", func() error {
			ps := make([]store.WorkerFinishParams, len(ws))
			for i, w := range ws {
				ps[i] = store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Now: now, Attempts: 1, ResourceID: w.ResourceID,
					Status: store.WorkerSuccess, SetResourceCert: true, ResourceCertID: 1}
			}
			errs, err := r.WorkerFinishMany(ctx, ps)
			for _, e := range errs {
				err = errors.Join(err, e)
			}
			return err
		}, "", false},
	} {
		r.take()
		if err := c.run(); err != nil {
			t.Fatalf("%s: %v", c.call, err)
		}
		plans := r.take()
		if len(plans) == 0 {
			t.Fatalf("%s: no plan came back (is auto_explain loaded?)", c.call)
		}
		scans := 0
		for _, plan := range plans {
			allowed := strings.Fields(c.indexes)
			if writes.MatchString(plan) {
				// A write's rows are known by ID: any other index read is
				// one that grows with the table (a bitmap of every runnable
				// worker's entry, say).
				allowed = []string{"workers_pkey", "resources_pkey"}
			}
			for _, line := range strings.Split(plan, "\n") {
				if c.noSort && sortNode.MatchString(line) {
					t.Errorf("%s sorts:\n%s", c.call, plan)
				}
				m := scanNode.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				if m[4] != "" { // a bitmap index scan: kind, index, table
					m = []string{m[0], m[4], m[5], m[6]}
				}
				scans++
				switch {
				case m[1] == "Seq Scan":
					t.Errorf("%s reads every row of %s:\n%s", c.call, m[3], plan)
				case m[1] != "Bitmap Heap Scan" && !slices.Contains(allowed, m[2]):
					t.Errorf("%s reads %s through %s, not only through %s:\n%s", c.call, m[3], m[2], strings.Join(allowed, ", "), plan)
				}
			}
		}
		if scans == 0 {
			t.Fatalf("%s: no plan reads workers or resources:\n%s", c.call, strings.Join(plans, "\n"))
		}
	}
}
