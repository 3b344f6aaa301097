// Package keylock serialises work per key within a process: the cloud
// products use it so that one upload per certificate fingerprint happens
// when several workers of a job deploy the same certificate at once.
package keylock

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
