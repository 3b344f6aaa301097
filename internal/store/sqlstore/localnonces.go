package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// localNonces is NonceUseMany for a database only one node uses (SQLite):
// nonces are checked against a set in memory and written to the nonces
// table behind the answer, in batches, by one goroutine.
//
// What makes that safe is a durable epoch, the row of nonce_epoch:
//
//   - lease: a nonce is answered from memory only if it was signed before
//     the lease, a time at most localLease ahead that is written (with
//     synchronous = FULL) before it is relied on. A nonce signed later, one
//     signed before the epoch (floor) or before the memory set's horizon
//     (evicted), and one of unknown signing time go the slow way: checked in
//     memory, then inserted and committed before NonceUseMany returns.
//   - clean: written true once a run's every nonce is in the table (Close),
//     false when a run starts. A start that finds it false follows a crash:
//     nonces of the last run may be lost, and every one of them was signed
//     before the last lease, so every nonce signed before it is refused
//     (NonceBeforeEpoch). After a clean stop they take the slow way, which
//     finds them in the table.
//
// A start reloads the table's nonces signed at or after the epoch (those
// that went the slow way for being ahead of the lease), so that every nonce
// the fast way might see again is in memory. Memory holds about
// localKeep of nonces: an entry leaves once written and signed before the
// horizon, which only moves forward.
//
// It is not for several processes on one database file: each would answer
// from its own memory.
type localNonces struct {
	s *DB

	mu      sync.Mutex
	seen    map[string]localNonce
	pending []store.NonceParams // answered, not yet written
	floor   int64               // epoch ms: the last run's lease (or this run's start)
	crashed bool                // the last run did not end cleanly: refuse nonces signed before floor
	lease   int64               // epoch ms, durable: nonces signed before it may be answered from memory
	evicted int64               // epoch ms: written nonces signed before it have left seen
	closed  bool

	kick chan struct{} // pending grew
	stop chan struct{}
	done chan struct{}
}

type localNonce struct {
	signed, expires int64 // epoch ms; signed 0: unknown
	written         bool  // in the nonces table (or being inserted by the slow way)
}

const (
	// localLease is how far ahead of now the lease is written; it is
	// renewed once less than half of it remains, so nonces signed up to
	// about localLease/2 ahead of this node's clock take the fast way, and
	// a renewal's fsync may take up to localLease/2 (on a busy disk it took
	// 200–850 ms) before the fast way stops. Short, because a start after a
	// crash waits until the last lease has passed (StartLocalNonces).
	localLease = 2 * time.Second
	// localTick is how often the lease is looked at and memory swept.
	localTick = 250 * time.Millisecond
	// localKeep is how long after its signing time a nonce stays in
	// memory; a request signed longer ago takes the slow way.
	localKeep = time.Minute
	// localGather is the least time between two writes of pending nonces,
	// so that a busy server writes them in batches: at 5 ms (batches of ~5
	// at 1,000 calls/s) the writes cost ~80 µs of CPU per signed call, the
	// largest part of what signing cost a List (docs/benchmarks.md, E13).
	// Nothing waits for these writes; a crash before one is what the epoch covers.
	localGather = 100 * time.Millisecond
	// localBatch bounds the nonces one INSERT writes (3 parameters each).
	localBatch = 1000
)

// StartLocalNonces makes NonceUseMany answer from memory and write behind
// (localNonces). Only for a database file this process alone uses; call it
// after Migrate, before serving. Close writes what is still pending.
func (s *DB) StartLocalNonces(ctx context.Context) error {
	l := &localNonces{s: s, seen: map[string]localNonce{},
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	now := ms(time.Now())
	var lease int64
	var clean bool
	err := s.db.QueryRowContext(ctx, `SELECT lease_ms, clean FROM nonce_epoch WHERE id = 1`).Scan(&lease, &clean)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The first run since nonce_epoch was made: every nonce before it
		// was committed before its answer.
		l.floor = now
	case err != nil:
		return fmt.Errorf("store: nonces: read the epoch: %w", err)
	default:
		l.floor, l.crashed = lease, !clean
	}
	rows, err := s.db.QueryContext(ctx, `SELECT nonce, expires_ms, COALESCE(signed_ms, 0) FROM nonces
		WHERE signed_ms >= ? OR (signed_ms IS NULL AND expires_ms >= ?)`, l.floor, now)
	if err != nil {
		return fmt.Errorf("store: nonces: reload: %w", err)
	}
	for rows.Next() {
		var n string
		var e localNonce
		if err := rows.Scan(&n, &e.expires, &e.signed); err != nil {
			rows.Close()
			return fmt.Errorf("store: nonces: reload: %w", err)
		}
		e.written = true
		l.seen[n] = e
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("store: nonces: reload: %w", err)
	}
	if l.crashed {
		// Every nonce signed before floor is refused from now on. A client
		// whose clock agrees with ours signs in whole seconds (the SDKs'
		// timestamps), so serving only from the first second at or after
		// floor means none of its new requests is: a crash costs at most
		// localLease and a second of start-up, not refused calls.
		wait := time.Until(time.UnixMilli(l.floor).Truncate(time.Second).Add(time.Second))
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		now = ms(time.Now())
	}
	l.lease = max(lease, now+localLease.Milliseconds())
	if err := l.writeEpoch(ctx, l.lease, false); err != nil {
		return err
	}
	s.local = l
	go l.run()
	return nil
}

// use is NonceUseMany.
func (l *localNonces) use(ctx context.Context, ns []store.NonceParams) ([]store.NonceVerdict, error) {
	v := make([]store.NonceVerdict, len(ns))
	var slow []int
	added := false
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("store: nonces: the store is closed")
	}
	for i, n := range ns {
		if verdict, ok := l.judge(n); ok {
			v[i] = verdict
			added = added || verdict == store.NonceFresh
			continue
		}
		// The slow way. In memory first, so that a replay arriving while
		// the insert runs is refused even if the lease moves past it.
		l.seen[n.Nonce] = localNonce{signed: signedMS(n), expires: ms(n.Expires), written: true}
		slow = append(slow, i)
	}
	l.mu.Unlock()
	if added {
		l.kickWriter()
	}
	if len(slow) == 0 {
		return v, nil
	}
	ps := make([]store.NonceParams, len(slow))
	for j, i := range slow {
		ps[j] = ns[i]
	}
	got, err := l.s.nonceInsert(ctx, l.s.db, ps)
	if err != nil {
		l.mu.Lock()
		for _, p := range ps {
			delete(l.seen, p.Nonce)
		}
		l.mu.Unlock()
		return nil, err
	}
	for j, i := range slow {
		v[i] = got[j]
	}
	return v, nil
}

// now is NonceUseNow: the verdict on n when memory gives it, with
// nothing to wait for; ok is false when n must take the slow way (use).
func (l *localNonces) now(n store.NonceParams) (store.NonceVerdict, bool) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return 0, false // use reports the closed store
	}
	v, ok := l.judge(n)
	l.mu.Unlock()
	if ok && v == store.NonceFresh {
		l.kickWriter()
	}
	return v, ok
}

// judge gives n's verdict when memory alone decides it: used (seen),
// before the epoch after a crash, or fresh — signed after the horizon and
// before the lease, then remembered and queued for writing. ok is false
// for a nonce that must be inserted before it is answered (the slow way);
// judge then changes nothing. l.mu is held.
func (l *localNonces) judge(n store.NonceParams) (v store.NonceVerdict, ok bool) {
	if _, seen := l.seen[n.Nonce]; seen {
		return store.NonceUsed, true
	}
	t := signedMS(n)
	switch {
	case t != 0 && l.crashed && t < l.floor:
		return store.NonceBeforeEpoch, true
	case t != 0 && t >= max(l.floor, l.evicted) && t < l.lease:
		l.seen[n.Nonce] = localNonce{signed: t, expires: ms(n.Expires)}
		l.pending = append(l.pending, n)
		return store.NonceFresh, true
	}
	return 0, false
}

// signedMS is n's signing time in epoch milliseconds, 0 when unknown.
func signedMS(n store.NonceParams) int64 {
	if n.Signed.IsZero() {
		return 0
	}
	return ms(n.Signed)
}

// kickWriter tells run that pending grew.
func (l *localNonces) kickWriter() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// run writes pending nonces as they come, and every localTick renews the
// lease when due and forgets written nonces past the horizon.
func (l *localNonces) run() {
	defer close(l.done)
	tick := time.NewTicker(localTick)
	defer tick.Stop()
	for {
		select {
		case <-l.kick:
			l.write()
			select { // let the next batch gather
			case <-time.After(localGather):
			case <-l.stop:
				return
			}
		case <-tick.C:
			l.write()
			l.housekeep()
		case <-l.stop:
			return
		}
	}
}

// write inserts the pending nonces; it reports whether none is left. A
// failed insert leaves them pending, for the next try: they stay in memory,
// and a crash before they are written is what the epoch covers.
func (l *localNonces) write() bool {
	for {
		l.mu.Lock()
		n := min(len(l.pending), localBatch)
		batch := l.pending[:n:n]
		l.mu.Unlock()
		if n == 0 {
			return true
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_, err := l.s.nonceInsert(ctx, l.s.db, batch)
		cancel()
		if err != nil {
			return false
		}
		l.mu.Lock()
		l.pending = l.pending[n:]
		for _, p := range batch {
			if e, ok := l.seen[p.Nonce]; ok {
				e.written = true
				l.seen[p.Nonce] = e
			}
		}
		l.mu.Unlock()
	}
}

// housekeep moves the horizon to localKeep ago, forgets the written nonces
// signed before it, and renews the lease once half of it is spent.
func (l *localNonces) housekeep() {
	now := time.Now()
	l.mu.Lock()
	l.evicted = max(l.evicted, ms(now.Add(-localKeep)))
	for n, e := range l.seen {
		if e.written && e.signed < l.evicted {
			delete(l.seen, n)
		}
	}
	lease := l.lease
	l.mu.Unlock()
	if lease-ms(now) >= localLease.Milliseconds()/2 {
		return
	}
	next := ms(now.Add(localLease))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if l.writeEpoch(ctx, next, false) == nil {
		// Only now may nonces signed before next be answered from memory.
		l.mu.Lock()
		l.lease = max(l.lease, next)
		l.mu.Unlock()
	}
	// On failure the old lease stands: nonces signed after it take the
	// slow way until a renewal succeeds.
}

// purge forgets written nonces that expired before t (NoncePurge).
func (l *localNonces) purge(before time.Time) {
	b := ms(before)
	l.mu.Lock()
	defer l.mu.Unlock()
	for n, e := range l.seen {
		if e.written && e.expires < b {
			delete(l.seen, n)
		}
	}
}

// close stops the writer, writes what is pending and, if all of it was
// written, marks the run clean.
func (l *localNonces) close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	<-l.done
	if !l.write() {
		return // the next start treats this run as crashed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	l.writeEpoch(ctx, l.lease, true)
}

// writeEpoch writes the epoch row with synchronous = FULL: the lease must
// survive whatever a nonce answered under it might not (the connection
// otherwise commits with synchronous = NORMAL, which an OS crash may undo).
// Being in the same WAL, the nonces written before it are synced with it.
func (l *localNonces) writeEpoch(ctx context.Context, lease int64, clean bool) error {
	release, err := l.s.write(ctx) // the one writer's turn, before taking a connection
	if err != nil {
		return fmt.Errorf("store: nonces: write the epoch: %w", err)
	}
	defer release()
	conn, err := l.s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: nonces: write the epoch: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return fmt.Errorf("store: nonces: write the epoch: %w", err)
	}
	defer conn.ExecContext(context.Background(), `PRAGMA synchronous = NORMAL`)
	_, err = conn.ExecContext(ctx, `INSERT INTO nonce_epoch (id, lease_ms, clean) VALUES (1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET lease_ms = excluded.lease_ms, clean = excluded.clean`, lease, clean)
	if err != nil {
		return fmt.Errorf("store: nonces: write the epoch: %w", err)
	}
	return nil
}
