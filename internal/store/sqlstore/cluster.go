package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"sync"

	"github.com/certfleet/certfleet/internal/store"
)

// wakeChannel is the notification channel of wake-ups (Dialect.Notify, Dialect.Listen).
const wakeChannel = "certfleet_wake"

// LeaderAcquire implements store.ClusterStore with one conditional upsert
// timed by the database's clock (Dialect.NowMS).
func (s *DB) LeaderAcquire(ctx context.Context, p store.LeaderAcquireParams) (int64, bool, error) {
	now := s.d.NowMS
	var term int64
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO leader (name, holder, expires_ms, term)
		VALUES (?, ?, `+now+` + ?, 1)
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms,
			term = CASE WHEN leader.holder = excluded.holder AND leader.expires_ms >= `+now+` THEN leader.term ELSE leader.term + 1 END
		WHERE leader.holder = excluded.holder OR leader.expires_ms < `+now+`
		RETURNING term`), p.Name, p.Holder, p.Lease.Milliseconds()).Scan(&term)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, s.wrap(err)
	}
	return term, true, nil
}

// LeaderRelease implements store.ClusterStore.
func (s *DB) LeaderRelease(ctx context.Context, p store.LeaderReleaseParams) error {
	_, err := s.exec(ctx, s.db, `UPDATE leader SET expires_ms = 0 WHERE name = ? AND holder = ?`, p.Name, p.Holder)
	return err
}

// WakeNotify implements store.ClusterStore: through the database when the
// dialect has Notify, else to this store's in-process listeners.
func (s *DB) WakeNotify(ctx context.Context, p store.WakeNotifyParams) error {
	if s.d.Notify == "" {
		s.wake.send(p.Node)
		return nil
	}
	_, err := s.db.ExecContext(ctx, s.q(s.d.Notify), wakeChannel, p.Node)
	return s.wrap(err)
}

// WakeListen implements store.ClusterStore: on a dedicated connection when
// the dialect has Listen, else in-process.
func (s *DB) WakeListen(ctx context.Context, p store.WakeListenParams) error {
	ready := p.Ready
	if ready == nil {
		ready = func() {}
	}
	if s.d.Listen == nil {
		return s.wake.listen(ctx, ready, p.OnWake)
	}
	err := s.d.Listen(ctx, wakeChannel, ready, p.OnWake)
	if ctx.Err() != nil {
		return nil
	}
	if err == nil {
		err = errors.New("listen ended")
	}
	return s.wrap(err)
}

// hub delivers wake-ups in-process, to the listeners of one store.
type hub struct {
	mu   sync.Mutex
	subs map[chan string]struct{}
}

// send offers node to every listener; a listener whose queue is full
// already has wake-ups to handle and loses nothing by missing one more.
func (h *hub) send(node string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for ch := range h.subs {
		select {
		case ch <- node:
		default:
		}
	}
}

func (h *hub) listen(ctx context.Context, ready func(), onWake func(string)) error {
	ch := make(chan string, 16)
	h.mu.Lock()
	if h.subs == nil {
		h.subs = map[chan string]struct{}{}
	}
	h.subs[ch] = struct{}{}
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.subs, ch)
		h.mu.Unlock()
	}()
	ready()
	for {
		select {
		case <-ctx.Done():
			return nil
		case node := <-ch:
			onWake(node)
		}
	}
}

// MetricsSnapshot implements store.MetricsStore.
func (s *DB) MetricsSnapshot(ctx context.Context, p store.MetricsSnapshotParams) (store.MetricsSnapshot, error) {
	var m store.MetricsSnapshot
	var err error
	if m.JobsByStatus, err = s.countByStatus(ctx, `SELECT status, COUNT(*) FROM jobs GROUP BY status`); err != nil {
		return m, err
	}
	if m.WorkersByStatus, err = s.countByStatus(ctx, `SELECT status, COUNT(*) FROM workers GROUP BY status`); err != nil {
		return m, err
	}
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM workers
		WHERE active = 1 AND lease_owner <> '' AND lease_expires_ms < ?`), ms(p.Now)).Scan(&m.WorkerLeasesLapsed); err != nil {
		return m, s.wrap(err)
	}
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM notifications WHERE status = 'pending'`).Scan(&m.NotificationsPending); err != nil {
		return m, s.wrap(err)
	}
	return m, nil
}

func (s *DB) countByStatus(ctx context.Context, query string) (map[string]int64, error) {
	rows, err := s.db.QueryContext(ctx, query)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var status string
		var n int64
		if err := rows.Scan(&status, &n); err != nil {
			return nil, s.wrap(err)
		}
		out[status] = n
	}
	return out, s.wrap(rows.Err())
}
