package cluster_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/cluster"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/postgres"
	"github.com/certfleet/certfleet/internal/testutil"
)

type bundle struct {
	st   store.Store
	duty *duty
}

// duty records which nodes run the function Lead runs while leading: the
// tests wait on its changes instead of polling IsLeader.
type duty struct {
	mu      sync.Mutex
	running map[string]bool
	max     int           // most nodes running it at once
	changed chan struct{} // closed and replaced on each start and end
}

func (d *duty) set(holder string, running bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if running {
		d.running[holder] = true
	} else {
		delete(d.running, holder)
	}
	d.max = max(d.max, len(d.running))
	close(d.changed)
	d.changed = make(chan struct{})
}

// leader returns the only node of ns running the duty, if exactly one does.
func (d *duty) leader(ns []*node) *node {
	d.mu.Lock()
	defer d.mu.Unlock()
	var who *node
	for _, n := range ns {
		if d.running[n.holder] {
			if who != nil {
				return nil
			}
			who = n
		}
	}
	return who
}

// waitLeader waits until exactly one of ns runs the duty and returns it.
func (b bundle) waitLeader(t *testing.T, ns []*node, within time.Duration) *node {
	t.Helper()
	timeout := time.After(within)
	for {
		b.duty.mu.Lock()
		changed := b.duty.changed
		b.duty.mu.Unlock()
		if who := b.duty.leader(ns); who != nil {
			return who
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no single leader within %v", within)
		}
	}
}

// maxLeaders is the most nodes that ran the duty at once so far.
func (b bundle) maxLeaders() int {
	b.duty.mu.Lock()
	defer b.duty.mu.Unlock()
	return b.duty.max
}

func setup(t *testing.T) bundle {
	t.Helper()
	url := testutil.PostgresURL(t)
	st, err := postgres.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return bundle{st: st, duty: &duty{running: map[string]bool{}, changed: make(chan struct{})}}
}

// node is one elector running until stop.
type node struct {
	holder string
	el     *cluster.Elector
	stop   context.CancelFunc
	done   chan struct{}
}

func startNode(t *testing.T, b bundle, holder string, lease time.Duration) *node {
	t.Helper()
	el, err := cluster.New(b.st, slog.New(slog.DiscardHandler), cluster.Config{Holder: holder, Lease: lease})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{holder: holder, el: el, stop: cancel, done: make(chan struct{})}
	led := make(chan struct{})
	go func() {
		defer close(led)
		el.Lead(ctx, func(ctx context.Context) {
			b.duty.set(holder, true)
			<-ctx.Done()
			b.duty.set(holder, false)
		})
	}()
	go func() { defer close(n.done); el.Run(ctx); <-led }()
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

func TestElectorOneLeaderAndHandover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const lease = 900 * time.Millisecond
	ns := []*node{startNode(t, b, "a", lease), startNode(t, b, "b", lease), startNode(t, b, "c", lease)}
	first := b.waitLeader(t, ns, 3*time.Second)
	term := first.el.Term()
	if c, _ := leaders(ns); c != 1 {
		t.Fatalf("%d nodes say they lead, want 1", c)
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
	second := b.waitLeader(t, rest, 2*lease)
	if second.el.Term() <= term {
		t.Fatalf("new term %d, want > %d", second.el.Term(), term)
	}
	// Never two leaders, through the handover too.
	if m := b.maxLeaders(); m > 1 {
		t.Fatalf("%d nodes led at once", m)
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
	b.waitLeader(t, []*node{n}, 3*lease)
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Fatalf("took over after %v, before the lease lapsed", took)
	}
	if n.el.Term() != 2 {
		t.Fatalf("term %d, want 2", n.el.Term())
	}
}

// TestLeadRunsOnlyWhileLeading: the duty Lead runs (startNode runs one per
// node) runs on one node at a time, and moves to the other node when the
// leader stops.
func TestLeadRunsOnlyWhileLeading(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const lease = 900 * time.Millisecond
	ns := []*node{startNode(t, b, "a", lease), startNode(t, b, "b", lease)}
	first := b.waitLeader(t, ns, 3*time.Second)
	first.stop()
	<-first.done
	var other *node
	for _, n := range ns {
		if n != first {
			other = n
		}
	}
	b.waitLeader(t, []*node{other}, 3*time.Second)
	if who := b.duty.leader(ns); who != other {
		t.Fatalf("after the handover the duty does not run on %s alone", other.holder)
	}
	if m := b.maxLeaders(); m > 1 {
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
