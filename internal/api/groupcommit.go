package api

import (
	"context"
	"sync"
	"time"
)

// groupWriteTimeout bounds one batch's write.
const groupWriteTimeout = 30 * time.Second

// groupCommit writes items in batches: the items of calls arriving together
// are written by one call of write, not one each. While a batch is being
// written the next items gather; an idle server writes a lone item at once,
// with no added delay. One goroutine writes at a time. Signature nonces
// (nonces.go) and audit events (auditlog.go) are spent and recorded this way.
type groupCommit[T any] struct {
	// max bounds the items one write is given.
	max int
	// write writes a batch and returns one error per item (nil: written).
	// Its context is its own, not any caller's: one caller leaving must not
	// fail the others.
	write func(ctx context.Context, batch []T) []error

	mu       sync.Mutex
	pending  []groupItem[T]
	flushing bool
}

type groupItem[T any] struct {
	v    T
	done chan error // buffered
}

// do queues v and waits until its batch is written, or ctx is done (the
// batch still writes v).
func (g *groupCommit[T]) do(ctx context.Context, v T) error {
	return g.wait(ctx, g.start(v))
}

// start queues v for the next batch and returns where its result will be
// sent; the caller goes on meanwhile.
func (g *groupCommit[T]) start(v T) <-chan error {
	it := groupItem[T]{v: v, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, it)
	lead := !g.flushing
	g.flushing = true
	g.mu.Unlock()
	if lead {
		go g.flush()
	}
	return it.done
}

// wait is the result start promised, or ctx's error first.
func (g *groupCommit[T]) wait(ctx context.Context, done <-chan error) error {
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush writes pending items, batch after batch, until none are left.
func (g *groupCommit[T]) flush() {
	for {
		g.mu.Lock()
		n := min(len(g.pending), g.max)
		if n == 0 {
			g.flushing = false
			g.mu.Unlock()
			return
		}
		batch := g.pending[:n:n]
		g.pending = append([]groupItem[T](nil), g.pending[n:]...)
		g.mu.Unlock()

		vs := make([]T, len(batch))
		for i, it := range batch {
			vs[i] = it.v
		}
		ctx, cancel := context.WithTimeout(context.Background(), groupWriteTimeout)
		errs := g.write(ctx, vs)
		cancel()
		for i, it := range batch {
			it.done <- errs[i]
		}
	}
}
