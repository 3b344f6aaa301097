package engine

import (
	"sync/atomic"
	"time"
)

// leaseClock is when a worker's lease ends by this node's clock: the claim's
// expiry, pushed on by each renewal. A node that was frozen (SIGSTOP, a long
// pause) past it must not start touching the target when it resumes, before
// the lease renewal (leases.go) has had a chance to find the lease taken: another node may
// be deploying the same resource by then.
type leaseClock struct{ until atomic.Int64 } // Unix nanoseconds

func newLeaseClock(until time.Time) *leaseClock {
	l := &leaseClock{}
	l.until.Store(until.UnixNano())
	return l
}

func (l *leaseClock) renewed(until time.Time) { l.until.Store(until.UnixNano()) }

// lapsed reports whether the lease has ended at now, or ends within margin.
func (l *leaseClock) lapsed(now time.Time, margin time.Duration) bool {
	return now.Add(margin).UnixNano() >= l.until.Load()
}
