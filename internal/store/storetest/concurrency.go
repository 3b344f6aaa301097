package storetest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testConcurrency(t *testing.T, setup func(t *testing.T) *bundle) {
	// Claimers race over workers of several jobs that share resources, each
	// finishing what it claims, as engine nodes do. Every worker must be
	// claimed exactly once and no resource held by two claimers at a time.
	// A claim may fail with ErrConflict (the engine retries it); any other
	// error fails the test.
	t.Run("ClaimRace", func(t *testing.T) {
		t.Parallel()
		const (
			claimers  = 8
			resources = 50
			jobs      = 4 // every job deploys to every resource: 200 workers
			batch     = 5
		)
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		rs := b.resources(t, b.acct, "r", resources)
		var jobIDs []int64
		total := 0
		for k := range jobs {
			// Each job lists the resources in another order, so claimers
			// taking workers in ID order meet on resources from all sides.
			order := slices.Clone(rs)
			if k%2 == 1 {
				slices.Reverse(order)
			}
			order = append(order[k*resources/jobs:], order[:k*resources/jobs]...)
			j, ws := b.job(t, b.acct, c.ID, order...)
			jobIDs = append(jobIDs, j.ID)
			total += len(ws)
			b.schedule(t, j.ID, b.now)
		}
		started, err := b.s.JobStartDue(b.ctx, b.now)
		ok(t, err, "JobStartDue")
		equal(t, "started", sorted(started...), sorted(jobIDs...))

		var (
			mu        sync.Mutex
			claims    = map[int64]int{}   // worker → times claimed
			held      = map[int64]int64{} // resource → worker holding it
			done      int
			conflicts int
		)
		ctx, cancel := context.WithTimeout(b.ctx, time.Minute)
		defer cancel()
		claimLoop := func(owner string) error {
			for {
				mu.Lock()
				n := done
				mu.Unlock()
				if n == total {
					return nil
				}
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("%s: %d of %d workers done: %w", owner, n, total, err)
				}
				now := time.Now()
				ws, err := b.s.WorkerClaimDue(ctx, store.WorkerClaimDueParams{Owner: owner, Now: now, LeaseUntil: now.Add(time.Minute), Limit: batch})
				if errors.Is(err, store.ErrConflict) {
					mu.Lock()
					conflicts++
					mu.Unlock()
					continue
				}
				if err != nil {
					return fmt.Errorf("%s: WorkerClaimDue: %w", owner, err)
				}
				if len(ws) == 0 {
					time.Sleep(time.Millisecond)
					continue
				}
				mu.Lock()
				for _, w := range ws {
					claims[w.ID]++
					if claims[w.ID] > 1 {
						t.Errorf("%s claimed worker %d a second time", owner, w.ID)
					}
					if other, busy := held[w.ResourceID]; busy {
						t.Errorf("%s claimed worker %d on resource %d, held by worker %d", owner, w.ID, w.ResourceID, other)
					}
					held[w.ResourceID] = w.ID
				}
				mu.Unlock()
				runtime.Gosched() // let others try to claim while these are held
				for _, w := range ws {
					// Let go of the resource before the finish commits, so a
					// claim right after the commit is never taken for overlap.
					mu.Lock()
					delete(held, w.ResourceID)
					mu.Unlock()
					err := b.s.WorkerFinish(ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess,
						Attempts: 1, Now: time.Now()})
					if err != nil {
						return fmt.Errorf("%s: WorkerFinish(%d): %w", owner, w.ID, err)
					}
					mu.Lock()
					done++
					mu.Unlock()
				}
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, claimers)
		for g := range claimers {
			wg.Go(func() { errs <- claimLoop(fmt.Sprintf("claimer-%d", g)) })
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
		if t.Failed() {
			t.FailNow()
		}
		t.Logf("%d workers claimed by %d claimers; %d claims answered ErrConflict and were retried", total, claimers, conflicts)

		equal(t, "workers claimed", len(claims), total)
		for _, id := range jobIDs {
			for _, w := range b.workers(t, b.acct, id) {
				if claims[w.ID] != 1 || w.Status != store.WorkerSuccess {
					t.Errorf("worker %d: claimed %d times, status %s; want once, success", w.ID, claims[w.ID], w.Status)
				}
			}
			got, err := b.s.JobFinishIfDone(b.ctx, id, time.Now())
			ok(t, err, "JobFinishIfDone(%d)", id)
			equal(t, "job outcome", got, store.JobSuccess)
		}
	})
}
