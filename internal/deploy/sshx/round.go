package sshx

import (
	"context"
	"sync"
	"time"
)

// Reload rounds: many resources on one host (fifty nginx vhosts) should
// cause one config test and one reload, not fifty.
//
// A worker that has written its files joins the open round for its key (the
// connection plus the exact test and reload commands and Sudo). The first to
// join leads: it waits until nobody has touched the round's key for quiet
// (workers touch it when they start a Snapshot or Deploy, and when they
// join), or until maxWait has passed since it opened the round; then it
// closes the round to newcomers, runs test and reload once for everyone,
// and every member returns that shared result. Newcomers start the next
// round. A round never covers more workers than the engine runs at once on
// one host (--per-host).
//
// If the test fails, every member's undo (restore its previous files) runs,
// then the test runs again and, if it passes, the reload; each member fails
// with the first test's output.

// Debounce windows of a round; variables so tests can shorten them.
var (
	roundQuiet   = 300 * time.Millisecond
	roundMaxWait = 5 * time.Second
)

// member is one worker in a round: undo restores what it wrote (nil for a
// rollback, whose previous state is already what it wrote).
type member struct {
	undo func(context.Context) error
}

type round struct {
	opened  time.Time
	last    time.Time
	members []member
	done    chan struct{}
	err     error
}

// rounds holds the open round per key. Safe for concurrent use.
type rounds struct {
	mu    sync.Mutex
	open  map[string]*round
	touch map[string]time.Time // last activity per key, for the debounce
}

func newRounds() *rounds {
	return &rounds{open: map[string]*round{}, touch: map[string]time.Time{}}
}

// activity records that a worker is about to write for key, so an open
// round waits for it a little longer.
func (rs *rounds) activity(key string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	now := time.Now()
	if r := rs.open[key]; r != nil {
		r.last = now
	}
	rs.touch[key] = now
	if len(rs.touch) > 1024 {
		for k, t := range rs.touch {
			if now.Sub(t) > time.Minute {
				delete(rs.touch, k)
			}
		}
	}
}

// join adds m to key's open round (opening one if none) and returns the
// round's result. The leader runs run with every member; run must not use
// a context a member may cancel, so it gets ctx without cancellation.
// A member whose ctx ends stops waiting and returns ctx.Err(); the round
// still runs (and undoes) for it.
func (rs *rounds) join(ctx context.Context, key string, m member, run func(context.Context, []member) error) error {
	now := time.Now()
	rs.mu.Lock()
	if r := rs.open[key]; r != nil {
		r.members = append(r.members, m)
		r.last = now
		rs.mu.Unlock()
		select {
		case <-r.done:
			return r.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r := &round{opened: now, last: now, members: []member{m}, done: make(chan struct{})}
	rs.open[key] = r
	rs.mu.Unlock()

	for {
		rs.mu.Lock()
		if t := rs.touch[key]; t.After(r.last) {
			r.last = t
		}
		wait := min(roundQuiet-time.Since(r.last), roundMaxWait-time.Since(r.opened))
		if wait <= 0 {
			delete(rs.open, key)
			rs.mu.Unlock()
			break
		}
		rs.mu.Unlock()
		time.Sleep(wait)
	}
	r.err = run(context.WithoutCancel(ctx), r.members)
	close(r.done)
	return r.err
}
