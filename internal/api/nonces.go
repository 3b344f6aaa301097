package api

import (
	"context"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Signature nonces are spent by group commit: the nonces of calls arriving
// together are recorded by one INSERT (store.NonceUseMany), not one
// transaction each. A call still waits until its nonce is durably recorded
// in the shared database before it runs, so replay protection is what it
// was: a nonce used on one node is refused on every node, and after any
// restart, for as long as NonceExpiry keeps it. What changes is the cost:
// while a batch commits, the next calls' nonces gather, so under load a
// commit (a WAL flush on PostgreSQL, the write lock on SQLite) is paid once
// per batch instead of once per call; an idle server commits a lone nonce at
// once, with no added delay. docs/decisions.md (issue 14) gives the
// argument and the measurements.

// nonceBatchMax bounds the nonces one statement records.
const nonceBatchMax = 256

type nonceWait struct {
	p    store.NonceParams
	done chan error // buffered: nil, store.ErrConflict or the store's error
}

// nonceBatcher records nonces in batches; one goroutine flushes at a time.
type nonceBatcher struct {
	st interface {
		NonceUseMany(ctx context.Context, ns []store.NonceParams) ([]bool, error)
	}
	mu       sync.Mutex
	pending  []nonceWait
	flushing bool
}

// use records nonce, waiting for the batch it joins to commit. It returns
// store.ErrConflict when the nonce was seen before.
func (b *nonceBatcher) use(ctx context.Context, nonce string, expires time.Time) error {
	w := nonceWait{p: store.NonceParams{Nonce: nonce, Expires: expires}, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		go b.flush()
	}
	select {
	case err := <-w.done:
		return err
	case <-ctx.Done():
		// The batch still records the nonce; the call is over either way.
		return ctx.Err()
	}
}

// flush records pending nonces, batch after batch, until none are left.
func (b *nonceBatcher) flush() {
	for {
		b.mu.Lock()
		n := min(len(b.pending), nonceBatchMax)
		if n == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		batch := b.pending[:n:n]
		b.pending = append([]nonceWait(nil), b.pending[n:]...)
		b.mu.Unlock()

		ps := make([]store.NonceParams, len(batch))
		for i, w := range batch {
			ps[i] = w.p
		}
		// Not the callers' contexts: one leaving must not fail the others.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		fresh, err := b.st.NonceUseMany(ctx, ps)
		cancel()
		for i, w := range batch {
			switch {
			case err != nil:
				w.done <- err
			case fresh[i]:
				w.done <- nil
			default:
				w.done <- store.ErrConflict
			}
		}
	}
}
