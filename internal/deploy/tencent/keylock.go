package tencent

import (
	"context"
	"sync"
)

// keyLocks serialises work per key (one upload per fingerprint when
// several workers of a job deploy the same certificate at once), giving up
// when the context ends.
type keyLocks struct{ m sync.Map } // key → chan struct{} (capacity 1)

func (k *keyLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	v, _ := k.m.LoadOrStore(key, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
