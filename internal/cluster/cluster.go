// Package cluster lets several certfleet nodes share one PostgreSQL
// database: it elects the one node that runs the periodic duties (expiry
// scans, endpoint probes, notification delivery, nonce purge), and carries
// wake-ups between nodes (over LISTEN/NOTIFY, inside the store) so that a
// job made due on one node is picked up at once by the others. It holds no
// SQL: the lease and the wake-ups are store.ClusterStore methods.
//
// Leadership is a lease (LeaderAcquire) taken and renewed with one
// conditional write timed by the database's clock, so nodes need no
// synchronised clocks; each holder also keeps a local deadline and stops
// leading when it passes without a renewal, so a node frozen past its lease
// (SIGSTOP, a long GC pause, a partition) stands down before it could act on
// stale leadership for long. Duties must still be safe to run twice for a
// moment around a handover: every duty's writes are conditional in the store.
//
// It is not the job scheduler: scheduling due jobs and claiming workers runs
// on every node, made exclusive by row locks (see internal/engine). On
// SQLite (one node) Local gives a node that always leads and wakes only
// itself.
package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Elector reports whether this node leads and runs functions while it does.
// Its methods are safe for concurrent use.
type Elector struct {
	st     LeaseStore // nil: always leader (Local)
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	leader bool
	term   int64
	change chan struct{} // closed and replaced on every change
}

// Config tunes an Elector. Zero values take the defaults given.
type Config struct {
	// Name is the leadership's name (one row per name). Defaults to "duties".
	Name string
	// Holder names this node; it must be unique among live nodes. Required.
	Holder string
	// Lease is how long leadership lasts without renewal; a dead leader is
	// replaced within about Lease. Defaults to 5s.
	Lease time.Duration
	// Renew is how often the leader renews (and others try to take over).
	// Defaults to Lease/3.
	Renew time.Duration
	// OnChange, when set, is called (it must not block) each time this node
	// gains or loses leadership, with the new term.
	OnChange func(leader bool, term int64)
}

func (c *Config) defaults() {
	if c.Name == "" {
		c.Name = "duties"
	}
	if c.Lease <= 0 {
		c.Lease = 5 * time.Second
	}
	if c.Renew <= 0 || c.Renew >= c.Lease {
		c.Renew = c.Lease / 3
	}
}

// Local returns an Elector for a single node: it always leads.
func Local(cfg Config) *Elector {
	cfg.defaults()
	return &Elector{cfg: cfg, log: slog.New(slog.DiscardHandler), leader: true, term: 1, change: make(chan struct{})}
}

// LeaseStore is what an Elector needs of the store (store.ClusterStore).
type LeaseStore interface {
	LeaderAcquire(ctx context.Context, p store.LeaderAcquireParams) (term int64, ok bool, err error)
	LeaderRelease(ctx context.Context, p store.LeaderReleaseParams) error
}

// New returns an Elector contending for leadership through st with the
// other nodes sharing st's database. It leads only after Run has won the
// lease.
func New(st LeaseStore, log *slog.Logger, cfg Config) (*Elector, error) {
	cfg.defaults()
	if cfg.Holder == "" {
		return nil, errors.New("cluster: Config.Holder is required")
	}
	return &Elector{st: st, cfg: cfg, log: log, change: make(chan struct{})}, nil
}

// IsLeader reports whether this node leads now.
func (e *Elector) IsLeader() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader
}

// Term is the current leadership term this node holds (0 when not leading).
func (e *Elector) Term() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.leader {
		return 0
	}
	return e.term
}

func (e *Elector) state() (bool, chan struct{}) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.leader, e.change
}

func (e *Elector) set(leader bool, term int64) {
	e.mu.Lock()
	changed := leader != e.leader || (leader && term != e.term)
	e.leader, e.term = leader, term
	if changed {
		close(e.change)
		e.change = make(chan struct{})
	}
	e.mu.Unlock()
	if changed {
		e.log.Info("cluster: leadership", "leader", leader, "term", term, "node", e.cfg.Holder)
		if e.cfg.OnChange != nil {
			e.cfg.OnChange(leader, term)
		}
	}
}

// Run takes and renews the lease until ctx ends, then hands it back so
// another node takes over at once. On a Local elector it only waits.
func (e *Elector) Run(ctx context.Context) {
	if e.st == nil {
		<-ctx.Done()
		return
	}
	var deadline time.Time // local: leadership ends here without a renewal
	for {
		start := time.Now()
		term, ok, err := e.acquire(ctx)
		switch {
		case err != nil:
			if ctx.Err() == nil {
				e.log.Warn("cluster: leader lease", "error", err)
			}
			if e.IsLeader() && time.Now().After(deadline) {
				e.set(false, 0)
			}
		case ok:
			// Counted from before the statement: the database's expiry is later.
			deadline = start.Add(e.cfg.Lease - e.cfg.Lease/10)
			e.set(true, term)
		default:
			e.set(false, 0)
		}
		wait := e.cfg.Renew
		if e.IsLeader() {
			wait = min(wait, time.Until(deadline))
		}
		select {
		case <-ctx.Done():
			if e.IsLeader() {
				rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				e.release(rctx)
				cancel()
			}
			e.set(false, 0)
			return
		case <-time.After(wait):
		}
		// After a freeze the timer fires late: stand down before anything else.
		if e.IsLeader() && time.Now().After(deadline) {
			e.set(false, 0)
		}
	}
}

// acquire takes the lease if it is free or lapsed, or renews it if this
// node holds it. A new holder starts a new term.
func (e *Elector) acquire(ctx context.Context) (term int64, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, e.cfg.Renew)
	defer cancel()
	term, ok, err = e.st.LeaderAcquire(ctx, store.LeaderAcquireParams{Name: e.cfg.Name, Holder: e.cfg.Holder, Lease: e.cfg.Lease})
	if err != nil {
		return 0, false, fmt.Errorf("cluster: acquire %s: %w", e.cfg.Name, err)
	}
	return term, ok, nil
}

func (e *Elector) release(ctx context.Context) {
	if err := e.st.LeaderRelease(ctx, store.LeaderReleaseParams{Name: e.cfg.Name, Holder: e.cfg.Holder}); err != nil {
		e.log.Warn("cluster: hand back leadership", "error", err)
	}
}

// Lead runs fn each time this node becomes leader, with a context cancelled
// when it stops leading or ctx ends, and waits for fn to return before
// looking again. It returns when ctx ends and fn has returned.
func (e *Elector) Lead(ctx context.Context, fn func(ctx context.Context)) {
	for {
		leader, change := e.state()
		if !leader {
			select {
			case <-ctx.Done():
				return
			case <-change:
				continue
			}
		}
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			fn(lctx)
		}()
		select {
		case <-change:
		case <-ctx.Done():
		case <-done:
			// fn returned by itself: wait for a change before running it again.
			select {
			case <-change:
			case <-ctx.Done():
			}
		}
		cancel()
		<-done
		if ctx.Err() != nil {
			return
		}
	}
}
