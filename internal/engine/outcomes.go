package engine

import (
	"context"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Outcomes are written by group commit: the outcomes of workers finishing
// together go into one transaction (store.WorkerFinishMany), not one
// transaction each. Each stays a conditional write on its own lease token,
// so fencing is what it was: a stale holder's outcome writes nothing and
// fails alone. A worker returns only once its outcome is committed, so a
// crash loses no acknowledged outcome; at worst (the batch's transaction
// fails, or the process dies before the commit) the outcome is not
// recorded, the lease lapses and the deployment runs again, as when a
// single write failed. While one batch commits the next gathers, so an idle
// engine commits a lone outcome at once and a busy one pays a commit (a
// WAL flush on PostgreSQL, the write lock on SQLite) per batch. How many
// batches commit at once is the store's WriteConcurrency: one on SQLite (it
// has one writer), two on PostgreSQL (more split the waiting outcomes into
// batches of about one, each waiting for a flush of its own).

// outcomeBatchMax bounds the outcomes one transaction writes.
const outcomeBatchMax = 128

type outcomeWait struct {
	p    store.WorkerFinishParams
	done chan error // buffered
}

// outcomeBatcher writes outcomes in batches, with up to max transactions
// at once.
type outcomeBatcher struct {
	st interface {
		WorkerFinishMany(ctx context.Context, ps []store.WorkerFinishParams) ([]error, error)
	}
	max      int // flushes at once
	mu       sync.Mutex
	pending  []outcomeWait
	flushing int
}

// newOutcomeBatcher batches outcomes for st, running as many transactions
// at once as the store says are worth it (WriteConcurrency; 1 without).
func newOutcomeBatcher(st Store) *outcomeBatcher {
	b := &outcomeBatcher{st: st, max: 1}
	if wc, ok := st.(interface{ WriteConcurrency() int }); ok {
		b.max = max(1, wc.WriteConcurrency())
	}
	return b
}

// finish writes p with the next batch and waits for its commit. ctx only
// bounds the wait: the batch is written regardless.
func (b *outcomeBatcher) finish(ctx context.Context, p store.WorkerFinishParams) error {
	w := outcomeWait{p: p, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	lead := b.flushing < b.max
	if lead {
		b.flushing++
	}
	b.mu.Unlock()
	if lead {
		go b.flush()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *outcomeBatcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), outcomeBatchMax)
		if n == 0 {
			b.flushing--
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = append([]outcomeWait(nil), b.pending[n:]...)
		b.mu.Unlock()

		ps := make([]store.WorkerFinishParams, len(batch))
		for i, w := range batch {
			ps[i] = w.p
		}
		errs, err := b.write(ps)
		for i, w := range batch {
			if err != nil {
				w.done <- err
			} else {
				w.done <- errs[i]
			}
		}
	}
}

// write writes a batch, again after a failure while its ten seconds last: a
// batch fails as a whole (a deadlock PostgreSQL broke, a connection lost),
// and each outcome is fenced by its lease token, so writing it again cannot
// record anything twice. An outcome given up on is not recorded; its lease
// lapses and the deployment runs again.
func (b *outcomeBatcher) write(ps []store.WorkerFinishParams) ([]error, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pause := 20 * time.Millisecond
	for {
		errs, err := b.st.WorkerFinishMany(ctx, ps)
		if err == nil || ctx.Err() != nil {
			return errs, err
		}
		select {
		case <-ctx.Done():
			return errs, err
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
}
