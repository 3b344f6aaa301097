package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// start runs a leased worker in its own goroutine; rd holds what its claim
// read for it.
func (e *Engine) start(ctx context.Context, w store.Worker, rd *claimReads) {
	deploying := w.Status != store.WorkerRollback
	e.mu.Lock()
	e.running++
	e.unplaced++ // until run knows its host
	if deploying {
		e.deploying[w.JobID]++
	}
	e.mu.Unlock()
	e.wg.Add(1)
	sl := &slot{e: e}
	go func() {
		defer func() {
			e.mu.Lock()
			if sl.freed {
				e.committing--
			} else {
				e.running--
			}
			if deploying {
				if e.deploying[w.JobID]--; e.deploying[w.JobID] == 0 {
					delete(e.deploying, w.JobID)
				}
			}
			e.finishing[w.JobID] = true
			e.mu.Unlock()
			e.wg.Done()
			e.workerDone()
		}()
		e.run(ctx, w, rd, sl)
	}()
}

// slot is a running worker's place among Config.Workers. It is given up
// (free) once the worker's outcome is handed to the group commit: waiting
// for the commit is no deployment, and while it waits its lease and its
// resource's one-holder mark stay in the database, so nothing else can run
// it or its resource until the outcome is durable. At most
// committingPerWorker·Workers outcomes wait so (claim counts them). Its
// host's session slot is given up too.
type slot struct {
	e     *Engine
	host  *hostGate // nil: no host gate
	freed bool      // guarded by e.mu
}

func (s *slot) free() {
	if s.host != nil {
		s.host.release()
	}
	s.e.mu.Lock()
	s.freed = true
	s.e.running--
	s.e.committing++
	s.e.mu.Unlock()
	s.e.workerDone()
}

// run executes one leased worker: deploy or roll back, record. Its lease is
// renewed meanwhile by renewLeases (leases.go).
func (e *Engine) run(parent context.Context, w store.Worker, rd *claimReads, sl *slot) {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	lc := newLeaseClock(w.LeaseExpires)
	defer e.hold(w.ID, heldLease{token: w.LeaseToken, clock: lc, cancel: cancel})()
	placed := sync.OnceFunc(func() {
		e.mu.Lock()
		e.unplaced--
		e.mu.Unlock()
	})
	defer placed()

	log := e.log.With("job_id", w.JobID, "worker_id", w.ID, "resource_id", w.ResourceID)
	d, ok := e.products.Lookup(w.CloudName, w.CloudProduct)
	if !ok {
		e.finish(ctx, log, w, sl, fmt.Errorf("engine: no deployer for %s/%s", w.CloudName, w.CloudProduct), true, false)
		return
	}
	req, vs, currentCert, err := e.request(ctx, w, rd)
	if err != nil {
		if ctx.Err() != nil {
			// Shutdown or lost lease, not a fault of the worker.
			log.Info("worker interrupted", "cause", context.Cause(ctx))
			return
		}
		e.finish(ctx, log, w, sl, err, deploy.IsPermanent(err), false) // a database error is transient
		return
	}
	if h, ok := d.(deploy.Hoster); ok {
		if host := h.Host(req.Target); host != "" {
			g, err := e.acquireHost(ctx, host)
			placed() // counted in the host's busy count from here (or gone)
			if err != nil {
				return // shutting down or lease lost: another attempt will run it
			}
			defer g.release()
			sl.host = g
			ctx = deploy.WithHostGate(ctx, g)
		}
	}
	placed()
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
	e.finish(ctx, log, w, sl, err, deploy.IsPermanent(err), restored)
}

var errLeaseLost = errors.New("engine: lease lost to another node")

var errLeaseLapsed = errors.New("engine: lease lapsed before the deployment started")

// finish records an attempt's outcome: success, a retry later, or failure.
// restored says a successful rollback put a previous state back; only then
// does the certificate the resource serves change (a rollback with nothing to
// undo leaves it as it is).
func (e *Engine) finish(ctx context.Context, log *slog.Logger, w store.Worker, sl *slot, err error, permanent, restored bool) {
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
	sl.free()
	if ferr := e.outcomes.finish(wctx, p); ferr != nil {
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
func (e *Engine) request(ctx context.Context, w store.Worker, rd *claimReads) (deploy.Request, verify.Settings, int64, error) {
	res, err := rd.resource(ctx, w)
	if errors.Is(err, store.ErrNotFound) {
		return deploy.Request{}, verify.Settings{}, 0, deploy.Permanent(fmt.Errorf("engine: resource %d no longer exists", w.ResourceID))
	}
	if err != nil {
		return deploy.Request{}, verify.Settings{}, 0, fmt.Errorf("engine: resource %d: %w", w.ResourceID, err)
	}
	// Secret Config values and the credential are stored sealed; the deployer gets them opened.
	t, vs, err := rollout.TargetOf(ctx, rd, e.box, res)
	if err != nil {
		return deploy.Request{}, vs, 0, fmt.Errorf("engine: %w", err)
	}
	b, err := e.bundle(ctx, w.AccountID, w.CertID)
	if err != nil {
		return deploy.Request{}, vs, 0, err
	}
	return deploy.Request{JobID: w.JobID, WorkerID: w.ID, Target: t, Bundle: b}, vs, res.CurrentCertID, nil
}
