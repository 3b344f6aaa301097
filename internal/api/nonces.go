package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Signature nonces are spent by group commit: the nonces of calls arriving
// together are recorded by one call of store.NonceUseMany, not one each.
// A call waits until the store has recorded its nonce, so that it is
// refused on every node sharing the database, before it answers; the store
// decides how durable that is (asynchronous commit on PostgreSQL, memory
// written behind on SQLite) and keeps a durable epoch so that a nonce lost
// in a crash is still refused. While a batch is recorded, the next calls'
// nonces gather; an idle server records a lone nonce at once, with no added
// delay. A store that keeps nonces in memory (store.NonceMemory: SQLite)
// answers most of them in the caller's goroutine, without a batch (now).
// docs/decisions.md (issue 14) gives the argument and the measurements.

// nonceBatchMax bounds the nonces one statement records.
const nonceBatchMax = 256

type nonceWait struct {
	p    store.NonceParams
	done chan error // buffered: nil, store.ErrConflict or the store's error
}

// nonceBatcher records nonces in batches; one goroutine flushes at a time.
type nonceBatcher struct {
	st interface {
		NonceUseMany(ctx context.Context, ns []store.NonceParams) ([]store.NonceVerdict, error)
	}
	mu       sync.Mutex
	pending  []nonceWait
	flushing bool
}

// errBeforeEpoch is a nonce signed before the store's epoch
// (store.NonceBeforeEpoch).
var errBeforeEpoch = errors.New("api: nonce signed before the store's epoch")

// now records p at once when the store answers it from memory
// (store.NonceMemory), with the error use would return; answered is false
// when p must wait for a batch (use).
func (b *nonceBatcher) now(p store.NonceParams) (answered bool, err error) {
	m, ok := b.st.(store.NonceMemory)
	if !ok {
		return false, nil
	}
	v, ok := m.NonceUseNow(p)
	if !ok {
		return false, nil
	}
	return true, verdictError(v)
}

// verdictError is what use returns for a verdict.
func verdictError(v store.NonceVerdict) error {
	switch v {
	case store.NonceFresh:
		return nil
	case store.NonceBeforeEpoch:
		return errBeforeEpoch
	default:
		return store.ErrConflict
	}
}

// use records p, waiting for the batch it joins to be recorded. It returns
// store.ErrConflict when the nonce was seen before, errBeforeEpoch when the
// store refuses it for its signing time.
func (b *nonceBatcher) use(ctx context.Context, p store.NonceParams) error {
	return b.wait(ctx, b.start(p))
}

// start queues p for the next batch and returns where its result (as use
// returns it) will be sent; the caller goes on meanwhile.
func (b *nonceBatcher) start(p store.NonceParams) <-chan error {
	w := nonceWait{p: p, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, w)
	lead := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if lead {
		go b.flush()
	}
	return w.done
}

// wait is the result start promised, or ctx's error first.
func (b *nonceBatcher) wait(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
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
		verdicts, err := b.st.NonceUseMany(ctx, ps)
		cancel()
		for i, w := range batch {
			if err != nil {
				w.done <- err
			} else {
				w.done <- verdictError(verdicts[i])
			}
		}
	}
}
