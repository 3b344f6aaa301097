package store

import (
	"context"
	"time"
)

// ClusterStore is the part of Store that lets several nodes share one
// database: a leadership lease (one holder at a time, timed by the
// database's clock so nodes need no synchronised clocks) and wake-ups
// between nodes. The rules built on them (when to renew, when to stand
// down, what a wake-up starts) belong to internal/cluster.
//
// On SQLite (one node) leases work the same way and wake-ups are delivered
// in-process, to the listeners of the same store.
type ClusterStore interface {
	// LeaderAcquire takes the leadership p.Name for p.Holder if no one holds
	// it or its holder's lease has lapsed, or renews it if p.Holder holds it;
	// the lease then ends p.Lease after the database's now. A new holder
	// starts a new term (the first is 1); a renewal keeps the term. ok is
	// false (err nil) while another holder's lease runs.
	LeaderAcquire(ctx context.Context, p LeaderAcquireParams) (term int64, ok bool, err error)
	// LeaderRelease ends p.Holder's lease of p.Name at once, so another
	// holder takes over without waiting for it to lapse. It does nothing if
	// p.Holder does not hold p.Name.
	LeaderRelease(ctx context.Context, p LeaderReleaseParams) error

	// WakeNotify tells every WakeListen of the database (on any node, this
	// one included) that jobs or workers changed; p.Node, the sender, is
	// passed to them. Delivery is best effort: a listener that is not
	// connected misses it.
	WakeNotify(ctx context.Context, p WakeNotifyParams) error
	// WakeListen listens for wake-ups until ctx ends (then it returns nil)
	// or the listening connection fails (then the error; call again to
	// reconnect). It calls p.Ready once listening, and p.OnWake with the
	// sender of each wake-up, one at a time; neither may block for long.
	WakeListen(ctx context.Context, p WakeListenParams) error
}

// LeaderAcquireParams is the argument of LeaderAcquire.
type LeaderAcquireParams struct {
	Name   string        // the leadership (one row per name)
	Holder string        // the node asking; unique among live nodes
	Lease  time.Duration // how long the lease lasts without renewal
}

// LeaderReleaseParams is the argument of LeaderRelease.
type LeaderReleaseParams struct {
	Name   string
	Holder string
}

// WakeNotifyParams is the argument of WakeNotify.
type WakeNotifyParams struct {
	Node string // the sender, so that it can ignore its own wake-up
}

// WakeListenParams is the argument of WakeListen.
type WakeListenParams struct {
	Ready  func()            // called once listening; may be nil
	OnWake func(node string) // called with each wake-up's sender
}

// MetricsStore is the part of Store that the metrics read at scrape time:
// counts over every account, for operators rather than for API answers.
type MetricsStore interface {
	// MetricsSnapshot counts jobs and workers by status, workers whose lease
	// lapsed before p.Now without a release, and undelivered notifications.
	MetricsSnapshot(ctx context.Context, p MetricsSnapshotParams) (MetricsSnapshot, error)
}

// MetricsSnapshotParams is the argument of MetricsSnapshot.
type MetricsSnapshotParams struct {
	Now time.Time // leases that ended before Now count as lapsed
}

// MetricsSnapshot is what MetricsSnapshot counts. Statuses without rows are
// absent from the maps.
type MetricsSnapshot struct {
	JobsByStatus         map[string]int64
	WorkersByStatus      map[string]int64
	WorkerLeasesLapsed   int64
	NotificationsPending int64
}
