package cluster_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/testutil"
)

type bundle struct {
	st store.Store
}

func setup(t *testing.T) bundle {
	t.Helper()
	url := testutil.PostgresURL(t)
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bundle{st: st}
}

// node is one elector running until stop.
type node struct {
	el   *cluster.Elector
	stop context.CancelFunc
	done chan struct{}
}

func startNode(t *testing.T, b bundle, holder string, lease time.Duration) *node {
	t.Helper()
	el, err := cluster.New(b.st, slog.New(slog.DiscardHandler), cluster.Config{Holder: holder, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{el: el, stop: cancel, done: make(chan struct{})}
	go func() { defer close(n.done); el.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-n.done })
	return n
}

func leaders(ns []*node) (count int, who *node) {
	for _, n := range ns {
		if n.el.IsLeader() {
			count++
			who = n
		}
	}
	return count, who
}

func waitLeader(t *testing.T, ns []*node, within time.Duration) *node {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if c, who := leaders(ns); c == 1 {
			return who
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no single leader within %v", within)
	return nil
}

func TestElectorOneLeaderAndHandover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const lease = 900 * time.Millisecond
	ns := []*node{startNode(t, b, "a", lease), startNode(t, b, "b", lease), startNode(t, b, "c", lease)}
	first := waitLeader(t, ns, 3*time.Second)
	term := first.el.Term()

	// Never two leaders while it holds.
	for range 20 {
		if c, _ := leaders(ns); c > 1 {
			t.Fatalf("%d leaders at once", c)
		}
		time.Sleep(25 * time.Millisecond)
	}

	// A graceful stop hands over at once (well within one lease).
	start := time.Now()
	first.stop()
	<-first.done
	rest := []*node{}
	for _, n := range ns {
		if n != first {
			rest = append(rest, n)
		}
	}
	second := waitLeader(t, rest, 2*lease)
	if second.el.Term() <= term {
		t.Fatalf("new term %d, want > %d", second.el.Term(), term)
	}
	t.Logf("graceful handover in %v", time.Since(start))
}

// TestElectorLapse stands for a leader that dies without handing over: its
// row is left to lapse, and another node takes over within about a lease.
func TestElectorLapse(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const lease = 900 * time.Millisecond
	// A dead holder: it took the lease and never renewed it.
	if _, ok, err := b.st.LeaderAcquire(t.Context(), store.LeaderAcquireParams{Name: "duties", Holder: "dead", Lease: lease}); err != nil || !ok {
		t.Fatalf("LeaderAcquire(dead) = %v, %v", ok, err)
	}
	start := time.Now()
	n := startNode(t, b, "alive", lease)
	if n.el.IsLeader() {
		t.Fatal("leads while the dead holder's lease runs")
	}
	waitLeader(t, []*node{n}, 3*lease)
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("took over after %v, before the lease lapsed", took)
	}
	if n.el.Term() != 2 {
		t.Fatalf("term %d, want 2", n.el.Term())
	}
}

func TestLeadRunsOnlyWhileLeading(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const lease = 900 * time.Millisecond
	var running atomic.Int32
	var maxRunning atomic.Int32
	ns := []*node{startNode(t, b, "a", lease), startNode(t, b, "b", lease)}
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(context.Background())
	for _, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n.el.Lead(ctx, func(ctx context.Context) {
				if v := running.Add(1); v > maxRunning.Load() {
					maxRunning.Store(v)
				}
				<-ctx.Done()
				running.Add(-1)
			})
		}()
	}
	first := waitLeader(t, ns, 3*time.Second)
	time.Sleep(100 * time.Millisecond)
	first.stop()
	<-first.done
	deadline := time.Now().Add(3 * time.Second)
	for running.Load() != 1 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if running.Load() != 1 {
		t.Fatalf("%d duties running after the handover, want 1", running.Load())
	}
	cancel()
	wg.Wait()
	if m := maxRunning.Load(); m > 1 {
		t.Fatalf("the duty ran on %d nodes at once", m)
	}
}

func TestLocalAlwaysLeads(t *testing.T) {
	t.Parallel()
	el := cluster.Local(cluster.Config{Holder: "x"})
	if !el.IsLeader() {
		t.Fatal("a local elector must lead")
	}
	ran := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go el.Lead(ctx, func(ctx context.Context) { close(ran); <-ctx.Done() })
	select {
	case <-ran:
	case <-time.After(2 * time.Second):
		t.Fatal("Lead did not run fn")
	}
}

func TestBusWakesOtherNodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	log := slog.New(slog.DiscardHandler)
	woke := make(chan string, 16)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ready := make(chan struct{}, 2)
	mk := func(name string) *cluster.Bus {
		first := true
		bus := cluster.NewBus(b.st, name, func() {
			if first { // the wake-up after connecting
				first = false
				ready <- struct{}{}
				return
			}
			woke <- name
		}, log)
		go bus.Run(ctx)
		return bus
	}
	a := mk("a")
	mk("b")
	for range 2 {
		select {
		case <-ready:
		case <-time.After(5 * time.Second):
			t.Fatal("bus did not connect")
		}
	}
	a.Notify()
	select {
	case who := <-woke:
		if who != "b" {
			t.Fatalf("%s woke, want b (a sent it)", who)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("b was not woken")
	}
	select {
	case who := <-woke:
		t.Fatalf("unexpected wake-up of %s", who)
	case <-time.After(200 * time.Millisecond):
	}
}
