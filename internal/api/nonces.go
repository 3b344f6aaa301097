package api

import (
	"context"
	"errors"

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

// nonceBatcher records nonces in batches (groupCommit): do and start
// return store.ErrConflict for a nonce seen before, errBeforeEpoch for one
// the store refuses for its signing time.
type nonceBatcher struct {
	st interface {
		NonceUseMany(ctx context.Context, ns []store.NonceParams) ([]store.NonceVerdict, error)
	}
	groupCommit[store.NonceParams]
}

func (b *nonceBatcher) init(st store.Store) {
	b.st, b.max, b.write = st, nonceBatchMax, b.record
}

// record is the batcher's write: one NonceUseMany for the batch.
func (b *nonceBatcher) record(ctx context.Context, ps []store.NonceParams) []error {
	verdicts, err := b.st.NonceUseMany(ctx, ps)
	errs := make([]error, len(ps))
	for i := range ps {
		if err != nil {
			errs[i] = err
		} else {
			errs[i] = verdictError(verdicts[i])
		}
	}
	return errs
}

// errBeforeEpoch is a nonce signed before the store's epoch
// (store.NonceBeforeEpoch).
var errBeforeEpoch = errors.New("api: nonce signed before the store's epoch")

// now records p at once when the store answers it from memory
// (store.NonceMemory), with the error do would return; answered is false
// when p must wait for a batch (do).
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

// verdictError is what do returns for a verdict.
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
