package cluster

import (
	"context"
	"database/sql"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Channel is the PostgreSQL notification channel of wake-ups.
const Channel = "certfleet_wake"

// Bus carries wake-ups between nodes: Notify tells every other node, and
// each node's Run listens and calls its OnWake. Its methods are safe for
// concurrent use; Notify never blocks. A LocalBus (SQLite, one node) does
// nothing: the caller has already woken its own node.
type Bus struct {
	db     *sql.DB
	url    string
	node   string
	onWake func()
	log    *slog.Logger
	send   chan struct{}
}

// LocalBus returns a Bus for a single node: Notify does nothing.
func LocalBus() *Bus { return &Bus{send: make(chan struct{}, 1)} }

// NewBus returns a Bus over PostgreSQL: notifications are sent through db
// and received on a dedicated connection to url. onWake must not block.
func NewBus(db *sql.DB, url, node string, onWake func(), log *slog.Logger) *Bus {
	return &Bus{db: db, url: url, node: node, onWake: onWake, log: log, send: make(chan struct{}, 1)}
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
	if b.db == nil {
		<-ctx.Done()
		return
	}
	go b.sender(ctx)
	for ctx.Err() == nil {
		if err := b.listen(ctx); err != nil && ctx.Err() == nil {
			b.log.Warn("cluster: listen for wake-ups; reconnecting", "error", err)
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		}
	}
}

func (b *Bus) listen(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.Connect(cctx, b.url)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+Channel); err != nil {
		return err
	}
	b.onWake()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Payload != b.node {
			b.onWake()
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
		_, err := b.db.ExecContext(sctx, `SELECT pg_notify($1, $2)`, Channel, b.node)
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
