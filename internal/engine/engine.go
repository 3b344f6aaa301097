// Package engine runs deployment jobs: it starts pending jobs at their
// ScheduleTime, leases their workers, deploys through the deployer registry
// with bounded concurrency, retries transient failures with backoff, records
// what each resource served before, rolls back on request, and ends jobs.
//
// The database is the truth. The engine keeps no state it cannot lose: a
// worker is leased (with a fencing token) before it runs, its lease is
// renewed while it runs, and every outcome is a conditional write on that
// token, so after a crash any node can take over a lapsed lease and a stale
// holder can never overwrite a newer state.
//
// The files follow the engine's parts: engine.go (configuration, the run
// loop), schedule.go (starting due jobs, claiming workers, ending jobs),
// claimreads.go (what a claim's workers read, read once for the claim),
// worker.go (one leased worker's run and its outcome), leases.go (every
// running worker's lease renewed by one statement), outcomes.go (outcomes
// written by group commit), hostgate.go (per-host
// session slots), rollback.go (the previous state a worker records and
// restores), verify.go (verify-then-rollback), prober.go (the background
// prober), certcache.go (certificates with their keys), waves.go (staged
// rollouts). Time comes from Config.Clock only.
//
// It is not the API: it never validates user input, and it is not a
// deployer: it knows no target's protocol.
package engine

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/clock"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/secret"
)

// Config tunes the engine. Zero values take the defaults given.
type Config struct {
	// Egress makes the probes' connections under each account's egress
	// policy. nil: the default policy with every account treated as root.
	Egress *egress.Dialer
	// Owner names this node in leases. It must be unique among live nodes.
	// Required.
	Owner string
	// Workers bounds deployments running at once on this node. A deployment
	// waiting, with no session, for its host's reload round does not count
	// (deploy.HostGate.Yield); at most waitingPerWorker·Workers wait so. Nor
	// does one whose outcome waits for its group commit; at most
	// committingPerWorker·Workers wait so (worker.go, slot).
	// Defaults to 64.
	Workers int
	// PerHost bounds the sessions open at once to one target host (for ssh
	// targets: SSH sessions). It does not bound how many deployments share a
	// reload round. Defaults to 16.
	PerHost int
	// Lease is how long a claim lasts without renewal. Defaults to 30s.
	Lease time.Duration
	// Attempts is how many times a transiently failing deployment is tried. Defaults to 5.
	Attempts int
	// RetryBase is the first retry delay; each retry doubles it, with jitter. Defaults to 2s.
	RetryBase time.Duration
	// RetryMax caps a retry delay. Defaults to 5m.
	RetryMax time.Duration
	// AttemptTimeout bounds one deployment attempt. Defaults to 5m.
	AttemptTimeout time.Duration
	// IdlePoll is the longest the engine sleeps without looking at the
	// database when nothing is due (a safety net; wake-ups are event-driven).
	// Defaults to 30s.
	IdlePoll time.Duration
	// Clock is the engine's time source. Defaults to clock.Real; tests pass
	// a clock.Fake.
	Clock clock.Clock
	// OnPass, if set, is called after each scheduling pass with when the
	// engine looks again unless woken earlier. It must not block. Tests use
	// it to know that the loop ran past a point.
	OnPass func(next time.Time)
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 64
	}
	if c.PerHost <= 0 {
		c.PerHost = 16
	}
	if c.Lease <= 0 {
		c.Lease = 30 * time.Second
	}
	if c.Attempts <= 0 {
		c.Attempts = 5
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 2 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = 5 * time.Minute
	}
	if c.AttemptTimeout <= 0 {
		c.AttemptTimeout = 5 * time.Minute
	}
	if c.IdlePoll <= 0 {
		c.IdlePoll = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real
	}
}

// Engine runs jobs. Create it with New and start it with Run.
type Engine struct {
	cfg      Config
	store    Store
	box      *secret.Box
	products deploy.Catalog
	log      *slog.Logger

	wake  chan struct{} // Wake: look at everything
	freed chan struct{} // a worker ended: end jobs, claim more (schedule.go)

	mu         sync.Mutex
	running    int
	committing int                   // workers whose outcome waits for its commit (worker.go slot)
	waiting    int                   // deployments yielded to their host's round (hostgate.go)
	hosts      map[string]*hostSlots // hostgate.go
	unplaced   int                   // workers started whose host is not known yet
	finishing  map[int64]bool        // jobs whose workers changed since the last end check
	deploying  map[int64]int         // per job, its workers running here, rollbacks aside (schedule.go)
	leases     map[int64]heldLease   // running workers' leases, by worker ID (leases.go)
	wg         sync.WaitGroup

	certs    *certCache
	outcomes *outcomeBatcher // outcomes.go

	jobChanged func(jobID int64) // set by OnJobChange

	bakeWake time.Time // earliest bake end recorded since the last tick (waves.go)
}

// OnJobChange registers f, called (it must not block) after the engine has
// checked whether a job whose workers changed has ended: notifications look
// then for a job end or finished rollbacks to tell. Call it before Run.
func (e *Engine) OnJobChange(f func(jobID int64)) { e.jobChanged = f }

// New returns an engine; it does nothing until Run.
func New(st Store, box *secret.Box, products deploy.Catalog, log *slog.Logger, cfg Config) *Engine {
	cfg.defaults()
	return &Engine{cfg: cfg, store: st, box: box, products: products, log: log,
		wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), hosts: map[string]*hostSlots{}, finishing: map[int64]bool{},
		deploying: map[int64]int{}, leases: map[int64]heldLease{},
		certs: newCertCache(1024), outcomes: newOutcomeBatcher(st)}
}

// Wake tells the engine that jobs or workers changed. It never blocks.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// workerDone tells the loop that a worker ended. It never blocks.
func (e *Engine) workerDone() {
	select {
	case e.freed <- struct{}{}:
	default:
	}
}

// WakeJob tells the engine that job jobID changed outside it (a cancel
// may have ended it): the engine checks whether it ended and reports it to
// OnJobChange, so its end is told without waiting for a poll. It never blocks.
func (e *Engine) WakeJob(jobID int64) {
	e.markFinishing(jobID)
	e.Wake()
}

// Run schedules and runs work until ctx is cancelled, then waits for running
// deployments to stop and hands their leases back. It returns ctx.Err().
func (e *Engine) Run(ctx context.Context) error {
	// Leases this node held before a crash are left to lapse rather than
	// taken back at once: a target may still be finishing the dead process's
	// deployment, and a second one must not overlap it.
	if ids, err := e.store.JobUnfinishedIDs(ctx); err == nil {
		e.mu.Lock()
		for _, id := range ids {
			e.finishing[id] = true
		}
		e.mu.Unlock()
	}
	renewing := make(chan struct{})
	go func() { defer close(renewing); e.renewLeases(ctx) }()
	timer := e.cfg.Clock.NewTimer(0)
	defer timer.Stop()
	next, full := time.Time{}, true
	for {
		if full {
			next = e.tick(ctx)
		} else if n := e.freedPass(ctx); !n.IsZero() && n.Before(next) {
			next = n
		}
		timer.Reset(next.Sub(e.cfg.Clock.Now()))
		if e.cfg.OnPass != nil {
			e.cfg.OnPass(next)
		}
		select {
		case <-ctx.Done():
			e.wg.Wait()
			<-renewing
			// Hand back leases so another node (or our restart) continues at once.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e.store.WorkerReleaseOwner(rctx, e.cfg.Owner)
			cancel()
			return ctx.Err()
		case <-e.wake:
			full = true
		case <-timer.C():
			full = true
		case <-e.freed:
			full = false
		}
	}
}
