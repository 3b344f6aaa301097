// Package perkey keeps per-key state within a process for the cloud
// products: locks (one upload per certificate fingerprint when several
// workers of a job deploy the same certificate at once) and rate limits
// (one MaxQPS per credential, shared by its products and workers).
package perkey

import (
	"context"
	"sync"
)

// Locks is a set of mutexes by key. The zero value is ready to use.
type Locks struct{ m sync.Map } // key → chan struct{} (capacity 1)

// Lock waits for key's lock, or for ctx to end (returning its error).
func (k *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	v, _ := k.m.LoadOrStore(key, make(chan struct{}, 1))
	ch := v.(chan struct{})
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
