package engine

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/clock"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		desc      string
		base, max time.Duration
	}{
		{desc: "defaults", base: 2 * time.Second, max: 5 * time.Minute},
		{desc: "short", base: 100 * time.Millisecond, max: time.Second},
		{desc: "max below base", base: time.Second, max: 300 * time.Millisecond},
		{desc: "1ns base", base: time.Nanosecond, max: time.Millisecond},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := Config{RetryBase: tc.base, RetryMax: tc.max}
			cfg.defaults()
			e := &Engine{cfg: cfg}
			for n := 1; n <= 70; n++ {
				// base·2^(n-1), capped; computed in floating point so it cannot overflow.
				full := tc.max
				if f := float64(tc.base) * math.Pow(2, float64(n-1)); f < float64(tc.max) {
					full = time.Duration(f)
				}
				for range 200 {
					if d := e.backoff(n); d < full/2 || d > full {
						t.Fatalf("backoff(%d) = %v, want within [%v, %v]", n, d, full/2, full)
					}
				}
			}
		})
	}
}

// spyStore counts the engine's scheduling passes (each starts with
// JobStartDue) and can hold the reads of resources until their context
// ends, like a database that hangs.
type spyStore struct {
	store.Store
	polls        atomic.Int64
	hangResource atomic.Bool
	hanging      chan struct{} // receives once per held ResourceGet
	failFinishes atomic.Int64  // WorkerFinishMany calls left to fail
}

var errInjected = errors.New("injected: the outcome batch failed")

func (p *spyStore) WorkerFinishMany(ctx context.Context, ps []store.WorkerFinishParams) ([]error, error) {
	if p.failFinishes.Add(-1) >= 0 {
		return nil, errInjected
	}
	return p.Store.WorkerFinishMany(ctx, ps)
}

func (p *spyStore) JobStartDue(ctx context.Context, now time.Time) ([]int64, error) {
	p.polls.Add(1)
	return p.Store.JobStartDue(ctx, now)
}

func (p *spyStore) ResourceGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Resource, error) {
	if p.hangResource.Load() {
		p.hanging <- struct{}{}
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return p.Store.ResourceGetMany(ctx, accountID, ids)
}

func (p *spyStore) ResourceGet(ctx context.Context, accountID, id int64) (store.Resource, error) {
	if p.hangResource.Load() {
		p.hanging <- struct{}{}
		<-ctx.Done()
		return store.Resource{}, ctx.Err()
	}
	return p.Store.ResourceGet(ctx, accountID, id)
}

// rig is a real SQLite store, an account with one certificate, and a webhook
// receiver that holds every delivery until released.
type rig struct {
	t       *testing.T
	ctx     context.Context
	st      *spyStore
	box     *secret.Box
	account int64
	cert    store.Certificate
	url     string
	arrived chan string // domain of each delivery, as it arrives
	release chan struct{}
	unblock func() // releases every held delivery, now and later

	passMu   sync.Mutex
	passes   int           // scheduling passes the engine completed
	lastNext time.Time     // when the last pass said it would look again
	passed   chan struct{} // closed and replaced after each pass

	// catalog, when set, replaces the real registry.
	catalog deploy.Catalog
}

// onPass is the engine's OnPass hook.
func (r *rig) onPass(next time.Time) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	r.passes++
	r.lastNext = next
	close(r.passed)
	r.passed = make(chan struct{})
}

// pass returns the passes so far, the last one's next look, and a channel
// closed after the next pass.
func (r *rig) pass() (n int, next time.Time, passed <-chan struct{}) {
	r.passMu.Lock()
	defer r.passMu.Unlock()
	return r.passes, r.lastNext, r.passed
}

// waitPasses waits until the engine has completed more than n passes.
func (r *rig) waitPasses(n int) {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		got, _, passed := r.pass()
		if got > n {
			return
		}
		select {
		case <-passed:
		case <-timeout:
			r.t.Fatalf("the engine completed %d passes in 10s, want more than %d", got, n)
		}
	}
}

func setup(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	db, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, ctx: ctx, st: &spyStore{Store: db, hanging: make(chan struct{}, 10)}, box: box, arrived: make(chan string, 100), release: make(chan struct{}),
		passed: make(chan struct{})}
	if r.account, err = db.AccountEnsure(ctx, "root"); err != nil {
		t.Fatal(err)
	}
	ch := certstest.New(t, certstest.Options{DNSNames: []string{"*.example.test"}})
	p, err := certs.Parse(ch.CertPEM, ch.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r.cert = store.Certificate{AccountID: r.account, Name: "wild", CertPEM: p.CertPEM, KeyEnc: box.Seal([]byte(p.KeyPEM), secret.PurposeCertKey),
		CommonName: p.Info.CommonName, SANs: p.Info.SANs, Sha2: p.Info.Sha2, NotBefore: p.Info.NotBefore, NotAfter: p.Info.NotAfter}
	if err := db.CertificateCreate(ctx, &r.cert); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	r.unblock = func() { once.Do(func() { close(r.release) }) }
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var body struct{ Domain string }
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &body)
		r.arrived <- body.Domain
		select {
		case <-r.release:
		case <-req.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(r.unblock)
	r.url = srv.URL
	return r
}

func (r *rig) resource(domain string) store.Resource {
	r.t.Helper()
	cfg, _ := json.Marshal(map[string]any{"Url": r.url, "TimeoutSeconds": 30})
	res := store.Resource{AccountID: r.account, CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: domain, Name: domain, Config: string(cfg)}
	if err := r.st.ResourceCreate(r.ctx, &res); err != nil {
		r.t.Fatal(err)
	}
	return res
}

// startJob creates a job deploying r.cert to resources and makes it due now.
func (r *rig) startJob(resources ...store.Resource) int64 {
	r.t.Helper()
	ws, err := rollout.Match([]store.Certificate{r.cert}, resources)
	if err != nil {
		r.t.Fatal(err)
	}
	j := store.Job{AccountID: r.account, Name: "job", JobType: "user", CertIDs: []int64{r.cert.ID}}
	for _, res := range resources {
		j.ResourceIDs = append(j.ResourceIDs, res.ID)
	}
	if err := r.st.JobCreate(r.ctx, &j, store.WorkersOf(ws)); err != nil {
		r.t.Fatal(err)
	}
	if err := r.st.JobSetStatus(r.ctx, store.JobSetStatusParams{AccountID: r.account, JobID: j.ID, From: []store.JobStatus{store.JobEditing},
		To: store.JobPending, Now: time.Now(), ScheduleTime: time.Now()}); err != nil {
		r.t.Fatal(err)
	}
	return j.ID
}

// run starts an engine on the rig's store until stop is called or the test ends.
func (r *rig) run(cfg Config) (e *Engine, stop func()) {
	r.t.Helper()
	cfg.Owner = "test-node"
	cfg.OnPass = r.onPass
	var products deploy.Catalog = registry.New(registry.Options{})
	if r.catalog != nil {
		products = r.catalog
	}
	e = New(r.st, r.box, products, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	ctx, cancel := context.WithCancel(r.ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			r.unblock()
			cancel()
			<-done
		})
	}
	r.t.Cleanup(stop)
	return e, stop
}

func (r *rig) waitArrival(want string) {
	r.t.Helper()
	select {
	case d := <-r.arrived:
		if d != want {
			r.t.Fatalf("delivery for %s arrived, want %s", d, want)
		}
	case <-time.After(10 * time.Second):
		r.t.Fatalf("no delivery for %s within 10s", want)
	}
}

// TestEngineIdlesWhileBlocked checks that the engine does not poll the
// database in a loop while the only due work cannot be taken: a worker whose
// resource another job's worker holds, or any worker while every slot is
// busy and something keeps waking the engine. The engine runs on a fake
// clock that moves only when the test says, so "it does not poll" is shown
// by the pass it schedules next, not by waiting to see nothing happen.
func TestEngineIdlesWhileBlocked(t *testing.T) {
	for _, tc := range []struct {
		desc    string
		workers int
		// sameResource makes the second job deploy to the first one's resource.
		sameResource bool
		// wake pokes the engine five times while it is blocked.
		wake bool
	}{
		{desc: "resource held by another job's worker", workers: 4, sameResource: true},
		{desc: "every slot busy, woken", workers: 1, wake: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := setup(t)
			// Ahead of the wall clock, so jobs the rig schedules now are due.
			clk := clock.NewFake(time.Now().Add(time.Minute))
			first := r.resource("a.example.test")
			job1 := r.startJob(first)
			e, _ := r.run(Config{Workers: tc.workers, Lease: 10 * time.Second, IdlePoll: 30 * time.Second, Clock: clk})
			r.waitArrival("a.example.test")
			second := first
			if !tc.sameResource {
				second = r.resource("b.example.test")
			}
			job2 := r.startJob(second)
			e.Wake()
			r.waitJob(job2, store.JobProcessing)

			// Each pass looks at the database once and, blocked, schedules the
			// next look no sooner than blockedRecheck: the fake clock stands
			// still, so only a wake-up or the clock moving brings it back.
			checkIdle := func() {
				t.Helper()
				if _, next, _ := r.pass(); next.Sub(clk.Now()) < blockedRecheck {
					t.Fatalf("while blocked the engine looks again in %v, want at least %v", next.Sub(clk.Now()), blockedRecheck)
				}
			}
			checkIdle()
			passes0, _, _ := r.pass()
			polls0 := r.st.polls.Load()
			if tc.wake {
				for range 5 {
					n, _, _ := r.pass()
					e.Wake()
					r.waitPasses(n)
					checkIdle()
				}
			}
			n, next, _ := r.pass()
			clk.Advance(next.Sub(clk.Now())) // blockedRecheck, or IdlePoll with every slot busy
			r.waitPasses(n)
			checkIdle()
			passes, _, _ := r.pass()
			if polls := r.st.polls.Load() - polls0; polls != int64(passes-passes0) {
				t.Fatalf("the engine polled the database %d times in %d passes while blocked, want one per pass", polls, passes-passes0)
			}
			ws, _, err := r.st.WorkerList(r.ctx, store.WorkerListParams{AccountID: r.account, JobID: job2})
			if err != nil {
				t.Fatal(err)
			}
			if len(ws) != 1 || ws[0].Status != store.WorkerScheduling || ws[0].LeaseOwner != "" {
				t.Fatalf("while blocked the second job's worker is %+v, want scheduling and unclaimed", ws)
			}
			select {
			case d := <-r.arrived:
				t.Fatalf("a delivery for %s arrived while the first one was still running", d)
			default:
			}
			r.unblock()
			r.waitJob(job1, store.JobSuccess)
			r.waitJob(job2, store.JobSuccess)
		})
	}
}

// waitJob waits until job id has status want. A job's status changes only
// in the engine's passes, so it looks after each one.
func (r *rig) waitJob(id int64, want store.JobStatus) {
	r.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		_, _, passed := r.pass()
		j, err := r.st.JobGet(r.ctx, r.account, id)
		if err != nil {
			r.t.Fatal(err)
		}
		if j.Status == want {
			return
		}
		select {
		case <-passed:
		case <-timeout:
			r.t.Fatalf("job %d is %s after 10s, want %s", id, j.Status, want)
		}
	}
}

// TestEngineShutdownKeepsWorkers stops the engine while it is still
// gathering what a claimed worker needs from the database: the worker must
// be left for the next run, not failed.
func TestEngineShutdownKeepsWorkers(t *testing.T) {
	r := setup(t)
	res := r.resource("a.example.test")
	job := r.startJob(res)
	r.st.hangResource.Store(true)
	_, stop := r.run(Config{Lease: 10 * time.Second})
	select {
	case <-r.st.hanging:
	case <-time.After(10 * time.Second):
		t.Fatal("the engine did not start the worker")
	}
	stop()
	r.st.hangResource.Store(false)
	ws, _, err := r.st.WorkerList(r.ctx, store.WorkerListParams{AccountID: r.account, JobID: job})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Status != store.WorkerProcessing || ws[0].Attempts != 0 {
		t.Fatalf("after the shutdown the worker is %+v, want processing with no attempt used", ws)
	}

	// The next run deploys it (stop released the receiver for good).
	r.run(Config{Lease: 10 * time.Second})
	r.waitArrival("a.example.test")
	r.waitJob(job, store.JobSuccess)
}
