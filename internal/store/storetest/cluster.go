package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// acquire calls LeaderAcquire and returns its term and ok.
func (b *bundle) acquire(t *testing.T, name, holder string, lease time.Duration) (int64, bool) {
	t.Helper()
	term, held, err := b.s.LeaderAcquire(b.ctx, store.LeaderAcquireParams{Name: name, Holder: holder, Lease: lease})
	ok(t, err, "LeaderAcquire(%s, %s)", name, holder)
	return term, held
}

func testCluster(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("one holder at a time; renewals keep the term, releases hand over", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		cases := []struct {
			desc     string
			holder   string
			release  bool
			wantOK   bool
			wantTerm int64
		}{
			{desc: "a takes the free lease", holder: "a", wantOK: true, wantTerm: 1},
			{desc: "b is refused while a holds", holder: "b", wantOK: false},
			{desc: "a renews, same term", holder: "a", wantOK: true, wantTerm: 1},
			{desc: "b's release of a lease it does not hold does nothing", holder: "b", release: true},
			{desc: "b is still refused", holder: "b", wantOK: false},
			{desc: "a hands back", holder: "a", release: true},
			{desc: "b takes over at once, new term", holder: "b", wantOK: true, wantTerm: 2},
			{desc: "a is refused now", holder: "a", wantOK: false},
			{desc: "b renews", holder: "b", wantOK: true, wantTerm: 2},
		}
		for _, tc := range cases {
			if tc.release {
				ok(t, b.s.LeaderRelease(b.ctx, store.LeaderReleaseParams{Name: "duties", Holder: tc.holder}), "%s: LeaderRelease", tc.desc)
				continue
			}
			term, held := b.acquire(t, "duties", tc.holder, time.Minute)
			if held != tc.wantOK || (held && term != tc.wantTerm) {
				t.Fatalf("%s: LeaderAcquire = term %d, ok %v; want term %d, ok %v", tc.desc, term, held, tc.wantTerm, tc.wantOK)
			}
		}
		// Leaderships by other names are independent.
		if term, held := b.acquire(t, "other", "a", time.Minute); !held || term != 1 {
			t.Fatalf("LeaderAcquire(other, a) = term %d, ok %v; want term 1", term, held)
		}
	})

	t.Run("a lapsed lease passes to the next holder", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		if _, held := b.acquire(t, "duties", "a", 50*time.Millisecond); !held {
			t.Fatal("a did not take the free lease")
		}
		// a never renews: b takes over once the database's clock passes the lease.
		deadline := time.Now().Add(10 * time.Second)
		for {
			term, held := b.acquire(t, "duties", "b", time.Minute)
			if held {
				equal(t, "term after the lapse", term, int64(2))
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("b never took over the lapsed lease")
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, held := b.acquire(t, "duties", "a", time.Minute); held {
			t.Fatal("a took the lease back from b")
		}
	})

	t.Run("contenders at once: exactly one wins", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		const n = 8
		var wg sync.WaitGroup
		won := make([]bool, n)
		errs := make([]error, n)
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, won[i], errs[i] = b.s.LeaderAcquire(b.ctx, store.LeaderAcquireParams{Name: "duties", Holder: fmt.Sprintf("node%d", i), Lease: time.Minute})
			}()
		}
		wg.Wait()
		winners := 0
		for i := range n {
			ok(t, errs[i], "LeaderAcquire(node%d)", i)
			if won[i] {
				winners++
			}
		}
		equal(t, "winners", winners, 1)
	})

	t.Run("a wake-up reaches every listener, the sender's included", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ctx, cancel := context.WithCancel(b.ctx)
		defer cancel()
		const listeners = 2
		ready := make(chan struct{}, listeners)
		got := make(chan string, 16)
		done := make(chan error, listeners)
		for range listeners {
			go func() {
				done <- b.s.WakeListen(ctx, store.WakeListenParams{
					Ready:  func() { ready <- struct{}{} },
					OnWake: func(node string) { got <- node },
				})
			}()
		}
		for range listeners {
			select {
			case <-ready:
			case err := <-done:
				t.Fatalf("WakeListen ended before listening: %v", err)
			case <-time.After(10 * time.Second):
				t.Fatal("WakeListen never became ready")
			}
		}
		ok(t, b.s.WakeNotify(b.ctx, store.WakeNotifyParams{Node: "node-a"}), "WakeNotify")
		for i := range listeners {
			select {
			case node := <-got:
				equal(t, "sender", node, "node-a")
			case <-time.After(10 * time.Second):
				t.Fatalf("%d of %d listeners woken", i, listeners)
			}
		}
		cancel()
		for range listeners {
			select {
			case err := <-done:
				ok(t, err, "WakeListen after its context ended")
			case <-time.After(10 * time.Second):
				t.Fatal("WakeListen did not return when its context ended")
			}
		}
	})

	t.Run("MetricsSnapshot counts jobs, workers, lapsed leases and pending messages", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		m, err := b.s.MetricsSnapshot(b.ctx, store.MetricsSnapshotParams{Now: b.now})
		ok(t, err, "MetricsSnapshot(empty)")
		equal(t, "empty snapshot", m, store.MetricsSnapshot{JobsByStatus: map[string]int64{}, WorkersByStatus: map[string]int64{}})

		done, _ := b.simpleJob(t, 2)
		b.run(t, done.ID, store.WorkerSuccess)
		b.simpleJob(t, 1)                     // editing
		b.workerIn(t, store.WorkerProcessing) // leased until b.now+1m by "owner"
		ok(t, b.s.NotificationEmit(b.ctx, store.NotificationEmitParams{Kind: store.JobEventKindEnd, JobID: done.ID, Now: b.now,
			Rows: []store.Notification{{AccountID: b.acct, JobID: done.ID, Event: store.EventJobSuccess, Channel: store.ChannelEmail,
				Target: "ops@example.test", Body: "{}"}}}), "NotificationEmit")

		m, err = b.s.MetricsSnapshot(b.ctx, store.MetricsSnapshotParams{Now: b.now})
		ok(t, err, "MetricsSnapshot")
		equal(t, "snapshot", m, store.MetricsSnapshot{
			JobsByStatus:         map[string]int64{string(store.JobSuccess): 1, string(store.JobEditing): 1, string(store.JobProcessing): 1},
			WorkersByStatus:      map[string]int64{string(store.WorkerSuccess): 2, string(store.WorkerEditing): 1, string(store.WorkerProcessing): 1},
			NotificationsPending: 1,
		})
		m, err = b.s.MetricsSnapshot(b.ctx, store.MetricsSnapshotParams{Now: b.now.Add(2 * time.Minute)})
		ok(t, err, "MetricsSnapshot(after the lease)")
		equal(t, "lapsed leases", m.WorkerLeasesLapsed, int64(1))
	})
}
