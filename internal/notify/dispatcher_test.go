package notify

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/clock"
	"github.com/certfleet/certfleet/internal/store/sqlite"
)

// TestDispatcherPassesOnWakeAndPoll runs the dispatcher on a real SQLite
// store and a fake clock: with nothing to send it passes once at start, then
// once per wake-up and once per Poll of (fake) time, never on its own.
func TestDispatcherPassesOnWakeAndPoll(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	clk := clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	passes := make(chan time.Time, 10)
	const poll = 10 * time.Second
	d := New(st, slog.New(slog.NewTextHandler(io.Discard, nil)), Config{Clock: clk, Poll: poll,
		OnPass: func(next time.Time) { passes <- next }})
	done := make(chan struct{})
	go func() { defer close(done); d.Run(ctx) }()
	defer func() { cancel(); <-done }()

	pass := func(why string) {
		t.Helper()
		select {
		case next := <-passes:
			if want := clk.Now().Add(poll); !next.Equal(want) {
				t.Fatalf("after %s the next pass is at %v, want %v (Poll later)", why, next, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no pass after %s", why)
		}
		// The pass armed its timer at next: nothing is due before it.
		if at, ok := clk.NextDeadline(); !ok || !at.Equal(clk.Now().Add(poll)) {
			t.Fatalf("after %s the timer is at %v %v, want %v", why, at, ok, clk.Now().Add(poll))
		}
		if len(passes) != 0 {
			t.Fatalf("more than one pass after %s", why)
		}
	}
	pass("the start")
	d.Wake()
	pass("a wake-up")
	clk.Advance(poll - time.Nanosecond)
	if len(passes) != 0 {
		t.Fatal("a pass before Poll had passed")
	}
	clk.Advance(time.Nanosecond)
	pass("Poll of fake time")
}
