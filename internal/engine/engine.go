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

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// Config tunes the engine. Zero values take the defaults given.
type Config struct {
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
}

// Engine runs jobs. Create it with New and start it with Run.
type Engine struct {
	cfg      Config
	store    store.Store
	box      *secret.Box
	products *registry.Registry
	log      *slog.Logger

	wake chan struct{}

	mu        sync.Mutex
	running   int
	hosts     map[string]chan struct{}
	finishing map[int64]bool // jobs whose workers changed since the last end check
	wg        sync.WaitGroup

	certs *certCache
}

// PurposePrevious is the sealing purpose of recorded previous states.
const PurposePrevious = "worker-previous"

// PurposeCertKey and PurposeAccessSecret must match the API's sealing purposes.
const (
	PurposeCertKey      = "cert-key"
	PurposeAccessSecret = "cloud-access-secret"
)

// New returns an engine; it does nothing until Run.
func New(st store.Store, box *secret.Box, products *registry.Registry, log *slog.Logger, cfg Config) *Engine {
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
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		next := e.tick(ctx)
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			e.wg.Wait()
			// Hand back leases so another node (or our restart) continues at once.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			e.store.WorkerReleaseOwner(rctx, e.cfg.Owner)
			cancel()
			return ctx.Err()
		case <-e.wake:
		case <-timer.C:
		}
	}
}

// tick does everything due now and returns when to look again.
func (e *Engine) tick(ctx context.Context) time.Time {
	now := time.Now()
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
	e.finishJobs(ctx)

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
		status, err := e.store.JobFinishIfDone(ctx, id, time.Now())
		if err != nil {
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			e.markFinishing(id)
			continue
		}
		if status == store.JobSuccess || status == store.JobError {
			e.log.Info("job finished", "job_id", id, "status", status)
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
	go e.heartbeat(ctx, cancel, w, hbDone)
	defer func() { cancel(nil); <-hbDone }()

	log := e.log.With("job_id", w.JobID, "worker_id", w.ID, "resource_id", w.ResourceID)
	d, ok := e.products.Lookup(w.CloudName, w.CloudProduct)
	if !ok {
		e.finish(ctx, log, w, fmt.Errorf("engine: no deployer for %s/%s", w.CloudName, w.CloudProduct), true, false)
		return
	}
	req, err := e.request(ctx, w)
	if err != nil {
		if ctx.Err() != nil {
			// Shutdown or lost lease, not a fault of the worker.
			log.Info("worker interrupted", "cause", context.Cause(ctx))
			return
		}
		e.finish(ctx, log, w, err, true, false)
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
	attemptCtx, cancelAttempt := context.WithTimeout(ctx, e.cfg.AttemptTimeout)
	defer cancelAttempt()
	restored := false
	if w.Status == store.WorkerRollback {
		restored, err = e.rollback(attemptCtx, d, w, req)
	} else {
		err = e.deploy(attemptCtx, d, w, req)
	}
	if ctx.Err() != nil {
		// Shutdown or lost lease: leave the worker for whoever holds it next.
		log.Info("worker interrupted", "cause", context.Cause(ctx))
		return
	}
	e.finish(ctx, log, w, err, deploy.IsPermanent(err), restored)
}

var errLeaseLost = errors.New("engine: lease lost to another node")

func (e *Engine) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, w store.Worker, done chan struct{}) {
	defer close(done)
	t := time.NewTicker(e.cfg.Lease / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			err := e.store.WorkerExtendLease(ctx, w.ID, w.LeaseToken, time.Now().Add(e.cfg.Lease))
			if errors.Is(err, store.ErrConflict) {
				cancel(errLeaseLost)
				return
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
	sealed := e.box.Seal(b, PurposePrevious)
	err := e.store.WorkerRecordPrevious(ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken,
		ResourceCertID: resourceCertID, PreviousEnc: sealed})
	if err != nil {
		return fmt.Errorf("engine: record previous state: %w", err)
	}
	w.HasPrevious, w.PreviousEnc, w.ResourceCertID = true, sealed, resourceCertID
	return nil
}

func (e *Engine) deploy(ctx context.Context, d deploy.Deployer, w store.Worker, req deploy.Request) error {
	res, err := e.store.ResourceGet(ctx, w.AccountID, w.ResourceID)
	if errors.Is(err, store.ErrNotFound) {
		return deploy.Permanent(fmt.Errorf("engine: resource %d no longer exists", w.ResourceID))
	}
	if err != nil {
		return fmt.Errorf("engine: resource %d: %w", w.ResourceID, err)
	}
	if c, ok := d.(deploy.Checker); ok {
		same, err := c.AlreadyDeployed(ctx, req)
		if err != nil {
			return err
		}
		if same {
			if !w.HasPrevious {
				return e.record(ctx, &w, res.CurrentCertID, previous{Unchanged: true})
			}
			return nil
		}
	} else if res.CurrentCertID == w.CertID && !w.HasPrevious {
		// Our own record says the resource already serves this certificate.
		return e.record(ctx, &w, res.CurrentCertID, previous{Unchanged: true})
	}
	if s, ok := d.(deploy.Snapshotter); ok && !w.HasPrevious {
		snap, err := s.Snapshot(ctx, req)
		if err != nil {
			return err
		}
		if err := e.record(ctx, &w, res.CurrentCertID, previous{Data: snap}); err != nil {
			return err
		}
	}
	prev, err := d.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if !w.HasPrevious {
		return e.record(ctx, &w, res.CurrentCertID, previous{Data: prev})
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
	raw, err := e.box.Open(w.PreviousEnc, PurposePrevious)
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

// finish records an attempt's outcome: success, a retry later, or failure.
// restored says a successful rollback put a previous state back; only then
// does the certificate the resource serves change (a rollback with nothing to
// undo leaves it as it is).
func (e *Engine) finish(ctx context.Context, log *slog.Logger, w store.Worker, err error, permanent, restored bool) {
	now := time.Now()
	p := store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Now: now, Attempts: w.Attempts + 1, ResourceID: w.ResourceID}
	rollingBack := w.Status == store.WorkerRollback
	switch {
	case err == nil && rollingBack:
		p.Status, p.MarkJobRollback = store.WorkerRollbackSuccess, true
		p.SetResourceCert, p.ResourceCertID = restored, w.ResourceCertID
		p.Attempts = 0
	case err == nil:
		p.Status, p.SetResourceCert, p.ResourceCertID = store.WorkerSuccess, true, w.CertID
	case !permanent && w.Attempts+1 < e.cfg.Attempts:
		p.Status = w.Status
		if p.Status == store.WorkerScheduling {
			p.Status = store.WorkerProcessing
		}
		p.NextRunAt = now.Add(e.backoff(w.Attempts + 1))
		p.LastError = truncate(err.Error(), 2000)
	case rollingBack:
		p.Status, p.MarkJobRollback, p.LastError = store.WorkerRollbackError, true, truncate(err.Error(), 2000)
	default:
		p.Status, p.LastError = store.WorkerError, truncate(err.Error(), 2000)
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
		log.Info("worker will retry", "attempt", p.Attempts, "retry_at", p.NextRunAt.Format(time.RFC3339Nano), "error", p.LastError)
	default:
		log.Warn("worker failed", "status", p.Status, "error", p.LastError)
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

// request builds the deploy.Request of a worker.
func (e *Engine) request(ctx context.Context, w store.Worker) (deploy.Request, error) {
	res, err := e.store.ResourceGet(ctx, w.AccountID, w.ResourceID)
	if err != nil {
		return deploy.Request{}, fmt.Errorf("engine: resource %d: %w", w.ResourceID, err)
	}
	t := deploy.Target{ResourceID: res.ID, CloudName: res.CloudName, CloudProduct: res.CloudProduct, Domain: res.Domain,
		Config: json.RawMessage(res.Config)}
	if res.CloudAccessID != 0 {
		ac, err := e.store.AccessGet(ctx, w.AccountID, res.CloudAccessID)
		if err != nil {
			return deploy.Request{}, fmt.Errorf("engine: cloud access %d of resource %d: %w", res.CloudAccessID, res.ID, err)
		}
		sk, err := e.box.Open(ac.SecretKeyEnc, PurposeAccessSecret)
		if err != nil {
			return deploy.Request{}, fmt.Errorf("engine: cloud access %d: %w", ac.ID, err)
		}
		t.Access = &deploy.Access{ID: ac.ID, CloudName: ac.CloudName, SecretID: ac.SecretID, SecretKey: string(sk),
			Config: json.RawMessage(ac.Config)}
	}
	b, err := e.bundle(ctx, w.AccountID, w.CertID)
	if err != nil {
		return deploy.Request{}, err
	}
	return deploy.Request{JobID: w.JobID, WorkerID: w.ID, Target: t, Bundle: b}, nil
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
	key, err := e.box.Open(c.KeyEnc, PurposeCertKey)
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
