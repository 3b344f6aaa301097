package cluster

import (
	"context"
	"log/slog"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// WakeStore is what a Bus needs of the store (store.ClusterStore).
type WakeStore interface {
	WakeNotify(ctx context.Context, p store.WakeNotifyParams) error
	WakeListen(ctx context.Context, p store.WakeListenParams) error
}

// Bus carries wake-ups between nodes: Notify tells every other node, and
// each node's Run listens and calls its OnWake. Its methods are safe for
// concurrent use; Notify never blocks. A LocalBus (SQLite, one node) does
// nothing: the caller has already woken its own node.
type Bus struct {
	st     WakeStore // nil: LocalBus
	node   string
	onWake func()
	log    *slog.Logger
	send   chan struct{}
}

// LocalBus returns a Bus for a single node: Notify does nothing.
func LocalBus() *Bus { return &Bus{send: make(chan struct{}, 1)} }

// NewBus returns a Bus sending and receiving wake-ups through st, where
// node names this node (its own wake-ups are ignored). onWake must not
// block.
func NewBus(st WakeStore, node string, onWake func(), log *slog.Logger) *Bus {
	return &Bus{st: st, node: node, onWake: onWake, log: log, send: make(chan struct{}, 1)}
}

// Notify tells the other nodes, soon and at most once per coalescing
// window, that jobs or workers changed. Call it after the change commits.
func (b *Bus) Notify() {
	select {
	case b.send <- struct{}{}:
	default:
	}
}

// coalesce is the shortest spacing of two notifications from one node.
const coalesce = 50 * time.Millisecond

// Run listens and sends until ctx ends. After (re)connecting it calls
// OnWake once, since notifications sent meanwhile were lost.
func (b *Bus) Run(ctx context.Context) {
	if b.st == nil {
		<-ctx.Done()
		return
	}
	go b.sender(ctx)
	for ctx.Err() == nil {
		err := b.st.WakeListen(ctx, store.WakeListenParams{
			Ready: b.onWake,
			OnWake: func(node string) {
				if node != b.node {
					b.onWake()
				}
			},
		})
		if err != nil && ctx.Err() == nil {
			b.log.Warn("cluster: listen for wake-ups; reconnecting", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (b *Bus) sender(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-b.send:
		}
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := b.st.WakeNotify(sctx, store.WakeNotifyParams{Node: b.node})
		cancel()
		if err != nil && ctx.Err() == nil {
			b.log.Warn("cluster: send wake-up", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(coalesce):
		}
	}
}
