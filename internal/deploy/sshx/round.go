package sshx

import (
	"context"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// Reload rounds: many resources on one host (fifty nginx vhosts) should
// cause one config test and one reload, not fifty.
//
// A worker that has written its files joins the open round for its key (the
// connection plus the exact test and reload commands and Sudo). The first to
// join leads: it closes the round as soon as every session open on the key
// is a member waiting in it (nobody else is still writing) and nothing has
// touched the key for settle; failing that, once nobody has touched it for
// quiet, or maxWait after it opened. (Workers touch the key when they open a
// session for a check, Snapshot, Deploy or Rollback, and when they join.) It
// then runs test and reload once for everyone, and every member returns that
// shared result. Newcomers start the next round.
//
// The engine bounds the sessions open to one host (--per-host), not the
// size of a round: a member gives its session slot back while it waits
// (deploy.HostGate.Yield), and while the engine reports other deployments
// still on their way to the host (deploy.HostGate.Others) the round closes
// neither on settle nor on quiet, only at maxWait. So all resources of a job
// on one host that this node runs at once share one test and reload,
// whatever --per-host says.
//
// If the test fails, every member's undo (restore its previous files) runs,
// then the test runs again and, if it passes, the reload; each member fails
// with the first test's output.

// Debounce windows of a round; variables so tests can shorten them.
var (
	roundSettle  = 50 * time.Millisecond
	roundQuiet   = 300 * time.Millisecond
	roundMaxWait = 5 * time.Second
	roundPoll    = 10 * time.Millisecond
)

// member is one worker in a round: undo restores what it wrote (nil for a
// rollback, whose previous state is already what it wrote).
type member struct {
	undo func(context.Context) error
	keys []string        // PEM contents it wrote or restored, to withhold from errors
	gate deploy.HostGate // the engine's view of the host; nil outside the engine
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
	mu     sync.Mutex
	open   map[string]*round
	touch  map[string]time.Time // last activity per key, for the debounce
	active map[string]int       // sessions open per key
}

func newRounds() *rounds {
	return &rounds{open: map[string]*round{}, touch: map[string]time.Time{}, active: map[string]int{}}
}

// end records that a session begun on key is over.
func (rs *rounds) end(key string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.active[key]--; rs.active[key] <= 0 {
		delete(rs.active, key)
	}
}

// begin records that a worker opens a session for key (and may write), so
// an open round waits for it.
func (rs *rounds) begin(key string) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.active[key]++
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
// round's result, and a channel closed once the round has run. The leader,
// the member that opened the round, runs run with every member in a
// goroutine of its own; run must not use a context a member may cancel, so
// it gets ctx without cancellation. A member whose ctx ends, the leader
// included, stops waiting and returns ctx.Err(); the round still runs (and
// undoes) for it, so what it shares with the round (its connection) must
// stay usable until done closes.
func (rs *rounds) join(ctx context.Context, key string, m member, run func(context.Context, []member) error) (done <-chan struct{}, err error) {
	now := time.Now()
	rs.mu.Lock()
	r := rs.open[key]
	if r != nil {
		r.members = append(r.members, m)
		r.last = now
		rs.mu.Unlock()
	} else {
		r = &round{opened: now, last: now, members: []member{m}, done: make(chan struct{})}
		rs.open[key] = r
		rs.mu.Unlock()
		go rs.lead(context.WithoutCancel(ctx), key, r, run)
	}
	select {
	case <-r.done:
		return r.done, r.err
	case <-ctx.Done():
		return r.done, ctx.Err()
	}
}

// othersComing reports whether the engine still runs deployments to the
// round's host that have not joined it. Called with rs.mu held; a gate
// takes only the engine's lock.
func (r *round) othersComing() bool {
	for _, m := range r.members {
		if m.gate != nil {
			return m.gate.Others() > 0 // every member's gate sees the same host
		}
	}
	return false
}

// lead closes r once its members have gathered (see the package comment),
// then runs it.
func (rs *rounds) lead(ctx context.Context, key string, r *round, run func(context.Context, []member) error) {
	for {
		rs.mu.Lock()
		if t := rs.touch[key]; t.After(r.last) {
			r.last = t
		}
		wait := roundMaxWait - time.Since(r.opened)
		switch {
		case r.othersComing():
			// The engine runs deployments to this host that have not
			// joined: however slow they are (a loaded machine), wait for
			// them, up to maxWait.
		case rs.active[key] <= len(r.members):
			// Every open session is waiting here, and the engine is running
			// no other deployment to the host: nobody else is writing.
			wait = min(wait, roundSettle-time.Since(r.last))
		default:
			wait = min(wait, roundQuiet-time.Since(r.last))
		}
		if wait <= 0 {
			delete(rs.open, key)
			rs.mu.Unlock()
			break
		}
		rs.mu.Unlock()
		time.Sleep(min(wait, roundPoll)) // look again soon: the last writer may join any moment
	}
	r.err = run(ctx, r.members)
	close(r.done)
}
