// Package clock is the time source of certfleet's loops (the engine, the
// notification dispatcher): the real clock in production, and a fake one that
// tests move by hand, so a test can say "a minute later" without waiting a
// minute and can show that nothing was scheduled without sleeping.
//
// It is not a scheduler: loops still decide what to do and when; they only
// ask this package what time it is and to be woken at a time.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and arms timers. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// NewTimer returns a timer that sends on C once d has passed (at once
	// when d <= 0).
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the loops use, with Go 1.23 semantics:
// after Stop or Reset no stale value is received.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
	Reset(d time.Duration) bool
}

// Real is the system clock.
var Real Clock = realClock{}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (r realTimer) C() <-chan time.Time        { return r.t.C }
func (r realTimer) Stop() bool                 { return r.t.Stop() }
func (r realTimer) Reset(d time.Duration) bool { return r.t.Reset(d) }

// Fake is a clock that moves only when Advance is called. The zero value is
// not usable; create it with NewFake.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers map[*fakeTimer]struct{} // armed
	armed  chan struct{}           // closed and replaced whenever a timer is armed
}

// NewFake returns a fake clock reading now.
func NewFake(now time.Time) *Fake {
	return &Fake{now: now, timers: map[*fakeTimer]struct{}{}, armed: make(chan struct{})}
}

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock on by d and fires the timers due by then, in
// deadline order.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	var due []*fakeTimer
	for t := range f.timers {
		if !t.when.After(f.now) {
			due = append(due, t)
		}
	}
	sort.Slice(due, func(i, j int) bool { return due[i].when.Before(due[j].when) })
	for _, t := range due {
		delete(f.timers, t)
	}
	now := f.now
	f.mu.Unlock()
	for _, t := range due {
		t.fire(now)
	}
}

// Armed returns a channel closed the next time a timer is armed (NewTimer or
// Reset): a loop that armed a timer has finished a pass and is waiting.
func (f *Fake) Armed() <-chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.armed
}

// NextDeadline returns the earliest armed timer's deadline.
func (f *Fake) NextDeadline() (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var first time.Time
	for t := range f.timers {
		if first.IsZero() || t.when.Before(first) {
			first = t.when
		}
	}
	return first, !first.IsZero()
}

// NewTimer arms a fake timer.
func (f *Fake) NewTimer(d time.Duration) Timer {
	t := &fakeTimer{f: f, c: make(chan time.Time, 1)}
	t.Reset(d)
	return t
}

type fakeTimer struct {
	f    *Fake
	c    chan time.Time
	when time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }

func (t *fakeTimer) fire(now time.Time) {
	select {
	case t.c <- now:
	default:
	}
}

func (t *fakeTimer) Stop() bool {
	t.f.mu.Lock()
	defer t.f.mu.Unlock()
	_, armed := t.f.timers[t]
	delete(t.f.timers, t)
	t.drain()
	return armed
}

func (t *fakeTimer) drain() {
	select {
	case <-t.c:
	default:
	}
}

func (t *fakeTimer) Reset(d time.Duration) bool {
	f := t.f
	f.mu.Lock()
	_, armed := f.timers[t]
	t.drain()
	t.when = f.now.Add(d)
	now := f.now
	if d > 0 {
		f.timers[t] = struct{}{}
	} else {
		delete(f.timers, t)
	}
	close(f.armed)
	f.armed = make(chan struct{})
	f.mu.Unlock()
	if d <= 0 {
		t.fire(now)
	}
	return armed
}
