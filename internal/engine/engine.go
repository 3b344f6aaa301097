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
// It is not the API: it never validates user input, and it is not a
// deployer: it knows no target's protocol.
package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/clock"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// Config tunes the engine. Zero values take the defaults given.
type Config struct {
	// Egress makes the probes' connections under each account's egress
	// policy. nil: the default policy with every account treated as root.
	Egress *egress.Dialer
	// Owner names this node in leases. It must be unique among live nodes.
	// Required.
	Owner string
	// Workers bounds deployments running at once on this node. Defaults to 64.
	Workers int
	// PerHost bounds deployments running at once to one target host. Defaults to 16.
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

	wake chan struct{}

	mu        sync.Mutex
	running   int
	hosts     map[string]chan struct{}
	finishing map[int64]bool // jobs whose workers changed since the last end check
	wg        sync.WaitGroup

	certs *certCache

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
		wake: make(chan struct{}, 1), hosts: map[string]chan struct{}{}, finishing: map[int64]bool{},
		certs: newCertCache(1024)}
}

// Wake tells the engine that jobs or workers changed. It never blocks.
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
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
	timer := e.cfg.Clock.NewTimer(0)
	defer timer.Stop()
	for {
		next := e.tick(ctx)
		timer.Reset(next.Sub(e.cfg.Clock.Now()))
		if e.cfg.OnPass != nil {
			e.cfg.OnPass(next)
		}
		select {
		case <-ctx.Done():
			e.wg.Wait()
			// Hand back leases so another node (or our restart) continues at once.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e.store.WorkerReleaseOwner(rctx, e.cfg.Owner)
			cancel()
			return ctx.Err()
		case <-e.wake:
		case <-timer.C():
		}
	}
}

// tick does everything due now and returns when to look again.
func (e *Engine) tick(ctx context.Context) time.Time {
	now := e.cfg.Clock.Now()
	next := now.Add(e.cfg.IdlePoll)
	retrySoon := now.Add(time.Second)

	started, err := e.store.JobStartDue(ctx, now)
	if err != nil {
		if ctx.Err() == nil {
			e.log.Error("engine: start due jobs", "error", err)
		}
		return retrySoon
	}
	for _, id := range started {
		e.log.Info("job started", "job_id", id)
		e.markFinishing(id)
	}
	bake := e.wavesDue(ctx, now) // staged jobs whose bake ended are finishing too
	e.finishJobs(ctx)
	if bake = earliest(bake, e.takeBakeWake()); !bake.IsZero() && bake.Before(next) {
		next = bake
	}

	e.mu.Lock()
	free := e.cfg.Workers - e.running
	e.mu.Unlock()
	if free > 0 {
		ws, err := e.store.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: e.cfg.Owner, Now: now,
			LeaseUntil: now.Add(e.cfg.Lease), Limit: free})
		if err != nil {
			if ctx.Err() == nil && !errors.Is(err, store.ErrConflict) {
				e.log.Error("engine: claim workers", "error", err)
			}
			return retrySoon
		}
		for _, w := range ws {
			e.start(ctx, w)
		}
		if len(ws) == free {
			// Saturated: a finishing worker wakes us.
			return next
		}
	}
	if t, ok, err := e.store.JobNextDue(ctx); err == nil && ok && t.Before(next) {
		next = t
	}
	if t, ok, err := e.store.WorkerNextDue(ctx); err == nil && ok {
		// Everything claimable was claimed above, so a due time in the past
		// belongs to a worker waiting for its resource to be released; the
		// release wakes us, so only look again after a short pause.
		if t = later(t, now.Add(blockedRecheck)); t.Before(next) {
			next = t
		}
	}
	return next
}

// blockedRecheck is the pause before looking again at due workers that
// could not be claimed because another worker holds their resource.
const blockedRecheck = 250 * time.Millisecond

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func (e *Engine) markFinishing(jobID int64) {
	e.mu.Lock()
	e.finishing[jobID] = true
	e.mu.Unlock()
}

// finishJobs ends the jobs whose workers are all final.
func (e *Engine) finishJobs(ctx context.Context) {
	e.mu.Lock()
	ids := make([]int64, 0, len(e.finishing))
	for id := range e.finishing {
		ids = append(ids, id)
	}
	clear(e.finishing)
	e.mu.Unlock()
	for _, id := range ids {
		e.waveStep(ctx, id)
		status, err := e.store.JobFinishIfDone(ctx, id, e.cfg.Clock.Now())
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			e.markFinishing(id)
			continue
		}
		if e.jobChanged != nil {
			e.jobChanged(id)
		}
		if status == store.JobSuccess || status == store.JobError {
			e.log.Info("job finished", "job_id", id, "status", status)
			e.sweepLater(ctx, id)
		}
	}
}

func (e *Engine) start(ctx context.Context, w store.Worker) {
	e.mu.Lock()
	e.running++
	e.mu.Unlock()
	e.wg.Add(1)
	go func() {
		defer func() {
			e.mu.Lock()
			e.running--
			e.mu.Unlock()
			e.markFinishing(w.JobID)
			e.wg.Done()
			e.Wake()
		}()
		e.run(ctx, w)
	}()
}

// run executes one leased worker: heartbeat, deploy or roll back, record.
func (e *Engine) run(parent context.Context, w store.Worker) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	hbDone := make(chan struct{})
	lc := newLeaseClock(w.LeaseExpires)
	go e.heartbeat(ctx, cancel, w, lc, hbDone)
	defer func() { cancel(nil); <-hbDone }()

	log := e.log.With("job_id", w.JobID, "worker_id", w.ID, "resource_id", w.ResourceID)
	d, ok := e.products.Lookup(w.CloudName, w.CloudProduct)
	if !ok {
		e.finish(ctx, log, w, fmt.Errorf("engine: no deployer for %s/%s", w.CloudName, w.CloudProduct), true, false)
		return
	}
	req, vs, currentCert, err := e.request(ctx, w)
	if err != nil {
		if ctx.Err() != nil {
			// Shutdown or lost lease, not a fault of the worker.
			log.Info("worker interrupted", "cause", context.Cause(ctx))
			return
		}
		e.finish(ctx, log, w, err, deploy.IsPermanent(err), false) // a database error is transient
		return
	}
	if h, ok := d.(deploy.Hoster); ok {
		if host := h.Host(req.Target); host != "" {
			release, err := e.acquireHost(ctx, host)
			if err != nil {
				return // shutting down or lease lost: another attempt will run it
			}
			defer release()
		}
	}
	if lc.lapsed(e.cfg.Clock.Now(), e.cfg.Lease/10) {
		log.Info("worker interrupted", "cause", errLeaseLapsed)
		return // paused past the lease: another node may hold it now
	}
	defer metrics.DeployTimer(w.CloudProduct)()
	attemptCtx, cancelAttempt := context.WithTimeout(ctx, e.cfg.AttemptTimeout)
	defer cancelAttempt()
	restored := false
	if w.Status == store.WorkerRollback {
		restored, err = e.rollback(attemptCtx, d, w, req)
		if err == nil && restored {
			err = e.verifyRollback(attemptCtx, w, req, vs)
		}
	} else {
		var served []verify.Observation
		if vs.Enabled() && vs.AutoRollback && !w.HasPrevious {
			// What the target served before this worker first touched it,
			// for verifying an automatic rollback to a certificate certfleet
			// did not deploy.
			served = verify.ProbeAll(attemptCtx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain)
		}
		err = e.deploy(attemptCtx, d, &w, req, currentCert)
		if err == nil && vs.Enabled() {
			err = e.verifyDeploy(attemptCtx, log, d, w, req, vs, served)
		}
	}
	if ctx.Err() != nil {
		// Shutdown or lost lease: leave the worker for whoever holds it next.
		log.Info("worker interrupted", "cause", context.Cause(ctx))
		return
	}
	e.finish(ctx, log, w, err, deploy.IsPermanent(err), restored)
}

var errLeaseLost = errors.New("engine: lease lost to another node")

var errLeaseLapsed = errors.New("engine: lease lapsed before the deployment started")

func (e *Engine) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, w store.Worker, lc *leaseClock, done chan struct{}) {
	defer close(done)
	t := e.cfg.Clock.NewTimer(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(e.cfg.Lease / 3)
			until := e.cfg.Clock.Now().Add(e.cfg.Lease)
			err := e.store.WorkerExtendLease(ctx, w.ID, w.LeaseToken, until)
			if errors.Is(err, store.ErrConflict) {
				cancel(errLeaseLost)
				return
			}
			if err == nil {
				lc.renewed(until)
			}
		}
	}
}

func (e *Engine) acquireHost(ctx context.Context, host string) (func(), error) {
	e.mu.Lock()
	sem, ok := e.hosts[host]
	if !ok {
		sem = make(chan struct{}, e.cfg.PerHost)
		e.hosts[host] = sem
	}
	e.mu.Unlock()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// previous is what a worker records before deploying, sealed at rest.
type previous struct {
	// Unchanged means the resource already held the certificate: nothing to undo.
	Unchanged bool   `json:",omitempty"`
	Data      []byte `json:",omitempty"`
}

func (e *Engine) record(ctx context.Context, w *store.Worker, resourceCertID int64, p previous) error {
	b, _ := json.Marshal(p)
	sealed := e.box.Seal(b, secret.PurposePrevious)
	err := e.store.WorkerRecordPrevious(ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken,
		ResourceCertID: resourceCertID, PreviousEnc: sealed, Unchanged: p.Unchanged})
	if err != nil {
		return fmt.Errorf("engine: record previous state: %w", err)
	}
	w.HasPrevious, w.PreviousEnc, w.ResourceCertID = true, sealed, resourceCertID
	return nil
}

// recordLater keeps the previous state in w, to be written with the
// worker's outcome (one transaction fewer per worker). Only for states that
// a retry after a crash would compute again the same way: the resource's
// current certificate, "unchanged", or what Deploy itself returned.
func (e *Engine) recordLater(w *store.Worker, resourceCertID int64, p previous) {
	b, _ := json.Marshal(p)
	w.HasPrevious, w.PreviousEnc, w.ResourceCertID = true, e.box.Seal(b, secret.PurposePrevious), resourceCertID
	w.Unchanged, w.PreviousPending = p.Unchanged, true
}

// deploy puts req on the target; currentCert is the certificate our records
// say the resource serves now (0 = none), kept as what to restore.
func (e *Engine) deploy(ctx context.Context, d deploy.Deployer, w *store.Worker, req deploy.Request, currentCert int64) error {
	if c, ok := d.(deploy.Checker); ok {
		same, err := c.AlreadyDeployed(ctx, req)
		if err != nil {
			return err
		}
		if same {
			if !w.HasPrevious {
				e.recordLater(w, currentCert, previous{Unchanged: true})
			}
			return nil
		}
	} else if currentCert == w.CertID && !w.HasPrevious {
		// Our own record says the resource already serves this certificate.
		e.recordLater(w, currentCert, previous{Unchanged: true})
		return nil
	}
	if s, ok := d.(deploy.Snapshotter); ok && !w.HasPrevious {
		snap, err := s.Snapshot(ctx, req)
		if err != nil {
			return err
		}
		if err := e.record(ctx, w, currentCert, previous{Data: snap}); err != nil {
			return err
		}
	}
	prev, err := d.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if !w.HasPrevious {
		e.recordLater(w, currentCert, previous{Data: prev})
	}
	return nil
}

// rollback undoes what the worker deployed. restored is false when there was
// nothing to undo: the worker never changed the resource, or found it
// already serving its certificate.
func (e *Engine) rollback(ctx context.Context, d deploy.Deployer, w store.Worker, req deploy.Request) (restored bool, err error) {
	if !w.HasPrevious {
		return false, nil // this worker never changed the resource
	}
	raw, err := e.box.Open(w.PreviousEnc, secret.PurposePrevious)
	if err != nil {
		return false, deploy.Permanent(fmt.Errorf("engine: open previous state: %w", err))
	}
	var p previous
	if err := json.Unmarshal(raw, &p); err != nil {
		return false, deploy.Permanent(fmt.Errorf("engine: decode previous state: %w", err))
	}
	if p.Unchanged {
		return false, nil
	}
	rb, ok := d.(deploy.Rollbacker)
	if !ok {
		return false, deploy.Permanentf("engine: %s/%s cannot roll back", w.CloudName, w.CloudProduct)
	}
	req.Bundle = deploy.Bundle{}
	if w.ResourceCertID != 0 {
		b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
		if err != nil {
			return false, err
		}
		req.Bundle = b
	}
	return true, rb.Rollback(ctx, req, p.Data)
}

// verificationFailure is a deployment that no address served within the
// grace period. It is permanent: deploying again would not change what the
// target serves. rollbackTried marks the job as rolled back.
type verificationFailure struct {
	cause         error
	rollbackTried bool
	after         string // what the automatic rollback did
}

func (v *verificationFailure) Error() string {
	msg := "verification failed: " + v.cause.Error()
	if v.after != "" {
		msg += "; " + v.after
	}
	return msg
}

func (v *verificationFailure) Unwrap() error { return v.cause }

// verifyDeploy checks, after a deployment, that every VerifyAddress serves
// the deployed certificate within the grace period. When it does not, and
// AutoRollback is on, it restores the previous state at once and checks that
// the previous certificate is served again. served is what the addresses
// served before the deployment, when this attempt was the first to touch the
// target (else nil).
func (e *Engine) verifyDeploy(ctx context.Context, log *slog.Logger, d deploy.Deployer, w store.Worker, req deploy.Request,
	vs verify.Settings, served []verify.Observation) error {
	obs, err := verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, req.Bundle.Sha2, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, req.Bundle.Sha2)
	if err == nil || ctx.Err() != nil {
		return err
	}
	vf := &verificationFailure{cause: err}
	if !vs.AutoRollback {
		return deploy.Permanent(vf)
	}
	log.Warn("verification failed; rolling back", "error", audit.RedactURLs(err.Error()))
	vf.rollbackTried = true
	restored, rerr := e.rollback(ctx, d, w, req)
	switch {
	case rerr != nil:
		vf.after = "rollback failed: " + rerr.Error()
		return deploy.Permanent(vf)
	case !restored:
		vf.rollbackTried = false
		vf.after = "nothing to roll back (the target already held this certificate before the job)"
		return deploy.Permanent(vf)
	}
	want := ""
	if w.ResourceCertID != 0 {
		b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
		if err != nil {
			vf.after = "rolled back, but the previous certificate could not be loaded to verify it: " + err.Error()
			return deploy.Permanent(vf)
		}
		want = b.Sha2
	} else if s := verify.Summarize(served, ""); s.Err == nil && s.Sha2 != "" && len(served) == len(vs.Addresses) {
		want = s.Sha2 // not deployed by certfleet, but served before
		for _, o := range served {
			if o.Sha2 != want {
				want = ""
			}
		}
	}
	if want == "" {
		vf.after = "rolled back"
		return deploy.Permanent(vf)
	}
	obs, err = verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, want, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, want)
	if err != nil {
		vf.after = "rolled back, but the previous certificate is not served either: " + err.Error()
	} else {
		vf.after = "rolled back"
	}
	return deploy.Permanent(vf)
}

// verifyRollback checks, after a requested rollback restored a previous
// certificate, that every VerifyAddress serves it again.
func (e *Engine) verifyRollback(ctx context.Context, w store.Worker, req deploy.Request, vs verify.Settings) error {
	if !vs.Enabled() || w.ResourceCertID == 0 {
		return nil
	}
	b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
	if err != nil {
		return err
	}
	log := e.log.With("job_id", w.JobID, "worker_id", w.ID, "resource_id", w.ResourceID)
	obs, err := verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, b.Sha2, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, b.Sha2)
	if err != nil && ctx.Err() == nil {
		return deploy.Permanent(fmt.Errorf("verification after rollback failed: %w", err))
	}
	return err
}

// observe records what the addresses served as the resource's latest observation.
func (e *Engine) observe(ctx context.Context, log *slog.Logger, accountID, resourceID int64, obs []verify.Observation, want string) {
	if len(obs) == 0 {
		return
	}
	err := e.store.ResourceObservationPut(context.WithoutCancel(ctx), rollout.ObservationOf(accountID, resourceID, verify.Summarize(obs, want)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn("observation not recorded", "error", err)
	}
}

// RunProber probes every resource with a VerifyAddress, of every account, at
// once and then every interval, recording what each serves, until ctx ends.
// Several nodes may each run it; they only repeat each other's probes.
func (e *Engine) RunProber(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		return
	}
	t := e.cfg.Clock.NewTimer(interval)
	defer t.Stop()
	for {
		e.probeAll(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C():
			t.Reset(interval)
		}
	}
}

// proberParallel bounds the probes one round runs at once.
const proberParallel = 8

func (e *Engine) probeAll(ctx context.Context) {
	sem := make(chan struct{}, proberParallel)
	var wg sync.WaitGroup
	defer wg.Wait()
	var after int64
	for ctx.Err() == nil {
		rs, err := e.store.ResourceScan(ctx, store.ResourceScanParams{AfterID: after, ConfigContains: verify.KeyAddress, Limit: 500})
		if err != nil {
			if ctx.Err() == nil {
				e.log.Warn("prober: list resources", "error", err)
			}
			return
		}
		for _, r := range rs {
			after = r.ID
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			wg.Add(1)
			go func() {
				defer func() { <-sem; wg.Done() }()
				if _, _, err := rollout.Observe(ctx, e.store, e.cfg.Egress, r); err != nil && !errors.Is(err, rollout.ErrNoVerifyAddress) && ctx.Err() == nil {
					e.log.Warn("prober: observe resource", "resource_id", r.ID, "error", err)
				}
			}()
		}
		if len(rs) < 500 {
			return
		}
	}
}

// finish records an attempt's outcome: success, a retry later, or failure.
// restored says a successful rollback put a previous state back; only then
// does the certificate the resource serves change (a rollback with nothing to
// undo leaves it as it is).
func (e *Engine) finish(ctx context.Context, log *slog.Logger, w store.Worker, err error, permanent, restored bool) {
	now := e.cfg.Clock.Now()
	p := store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Now: now, Attempts: w.Attempts + 1, ResourceID: w.ResourceID}
	if w.PreviousPending {
		p.Previous = &store.WorkerRecordPreviousParams{ResourceCertID: w.ResourceCertID, PreviousEnc: w.PreviousEnc, Unchanged: w.Unchanged}
	}
	ev := rollout.WorkerSucceeded
	switch {
	case err == nil:
	case !permanent && w.Attempts+1 < e.cfg.Attempts:
		ev = rollout.WorkerRetried
	default:
		ev = rollout.WorkerFailed
	}
	to, ok := rollout.WorkerNext(w.Status, ev)
	if !ok {
		log.Error("engine: worker outcome not allowed from its status", "status", w.Status, "event", ev)
		return
	}
	p.Status = to
	rollingBack := w.Status == store.WorkerRollback
	switch {
	case ev == rollout.WorkerSucceeded && rollingBack:
		p.MarkJobRollback = true
		p.SetResourceCert, p.ResourceCertID = restored, w.ResourceCertID
		p.Attempts = 0
	case ev == rollout.WorkerSucceeded:
		p.SetResourceCert, p.ResourceCertID = true, w.CertID
	case ev == rollout.WorkerRetried:
		p.NextRunAt = now.Add(e.backoff(w.Attempts + 1))
		p.LastError = truncate(err.Error(), 2000)
	case rollingBack:
		p.MarkJobRollback, p.LastError = true, truncate(err.Error(), 2000)
	default:
		p.LastError = truncate(err.Error(), 2000)
		var vf *verificationFailure
		if errors.As(err, &vf) && vf.rollbackTried {
			p.MarkJobRollback = true
		}
	}
	// The outcome must be written even if shutdown starts now.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if ferr := e.store.WorkerFinish(wctx, p); ferr != nil {
		log.Warn("worker outcome not recorded (lease lost?)", "status", p.Status, "error", ferr)
		return
	}
	switch {
	case err == nil:
		log.Info("worker finished", "status", p.Status)
	case p.Status == store.WorkerProcessing || p.Status == store.WorkerRollback:
		log.Info("worker will retry", "attempt", p.Attempts, "retry_at", p.NextRunAt.Format(time.RFC3339Nano), "error", audit.RedactURLs(p.LastError))
	default:
		log.Warn("worker failed", "status", p.Status, "error", audit.RedactURLs(p.LastError))
	}
}

// backoff is the delay before retry n (1-based): RetryBase·2^(n-1), capped,
// with jitter in [50%, 100%].
func (e *Engine) backoff(n int) time.Duration {
	d := e.cfg.RetryBase
	for i := 1; i < n && d < e.cfg.RetryMax; i++ {
		d *= 2
	}
	d = min(d, e.cfg.RetryMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// request builds the deploy.Request of a worker, with the resource's
// verification settings and the certificate it serves now by our records.
func (e *Engine) request(ctx context.Context, w store.Worker) (deploy.Request, verify.Settings, int64, error) {
	res, err := e.store.ResourceGet(ctx, w.AccountID, w.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return deploy.Request{}, verify.Settings{}, 0, deploy.Permanent(fmt.Errorf("engine: resource %d no longer exists", w.ResourceID))
	}
	if err != nil {
		return deploy.Request{}, verify.Settings{}, 0, fmt.Errorf("engine: resource %d: %w", w.ResourceID, err)
	}
	// Secret Config values and the credential are stored sealed; the deployer gets them opened.
	t, vs, err := rollout.TargetOf(ctx, e.store, e.box, res)
	if err != nil {
		return deploy.Request{}, vs, 0, fmt.Errorf("engine: %w", err)
	}
	b, err := e.bundle(ctx, w.AccountID, w.CertID)
	if err != nil {
		return deploy.Request{}, vs, 0, err
	}
	return deploy.Request{JobID: w.JobID, WorkerID: w.ID, Target: t, Bundle: b}, vs, res.CurrentCertID, nil
}

// bundle loads a certificate with its key, through a small cache
// (certificates never change once uploaded).
func (e *Engine) bundle(ctx context.Context, accountID, certID int64) (deploy.Bundle, error) {
	if b, ok := e.certs.get(certID); ok {
		return b, nil
	}
	c, err := e.store.CertificateGet(ctx, accountID, certID)
	if err != nil {
		return deploy.Bundle{}, fmt.Errorf("engine: certificate %d: %w", certID, err)
	}
	key, err := e.box.Open(c.KeyEnc, secret.PurposeCertKey)
	if err != nil {
		return deploy.Bundle{}, fmt.Errorf("engine: certificate %d key: %w", certID, err)
	}
	leaf, chain := splitPEM(c.CertPEM)
	b := deploy.Bundle{CertID: c.ID, Name: c.Name, CertPEM: leaf, ChainPEM: chain, FullChainPEM: c.CertPEM, KeyPEM: string(key), Sha2: c.Sha2}
	e.certs.put(certID, b)
	return b, nil
}

// splitPEM splits a stored leaf+chain PEM after its first certificate.
func splitPEM(full string) (leaf, chain string) {
	const end = "-----END CERTIFICATE-----"
	i := strings.Index(full, end)
	if i < 0 {
		return full, ""
	}
	i += len(end)
	if i < len(full) && full[i] == '\n' {
		i++
	}
	return full[:i], strings.TrimLeft(full[i:], "\n")
}

type certCache struct {
	mu  sync.Mutex
	max int
	m   map[int64]deploy.Bundle
}

func newCertCache(max int) *certCache { return &certCache{max: max, m: map[int64]deploy.Bundle{}} }

func (c *certCache) get(id int64) (deploy.Bundle, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, ok := c.m[id]
	return b, ok
}

func (c *certCache) put(id int64, b deploy.Bundle) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		clear(c.m) // simple and bounded; certificates are cheap to reload
	}
	c.m[id] = b
}
