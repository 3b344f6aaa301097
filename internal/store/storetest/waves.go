package storetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// stagedJob creates an editing job over n fresh resources whose workers
// are in the given waves (one entry per worker), with a strategy.
func (b *bundle) stagedJob(t *testing.T, waves ...int) (store.Job, []store.Worker) {
	t.Helper()
	b.seq++
	c := b.cert(t, b.acct, fmt.Sprintf("wc%d", b.seq), nil)
	rs := b.resources(t, b.acct, fmt.Sprintf("wr%d", b.seq), len(waves))
	j := store.Job{AccountID: b.acct, Name: "staged", JobType: "user", CertIDs: []int64{c.ID}, Config: `{}`,
		Strategy: `{"Waves":[1,"100%"]}`, LastWave: slices.Max(waves)}
	ws := make([]store.Worker, len(rs))
	for i, r := range rs {
		j.ResourceIDs = append(j.ResourceIDs, r.ID)
		ws[i] = store.Worker{ResourceID: r.ID, CertID: c.ID, CloudName: r.CloudName, CloudProduct: r.CloudProduct, Wave: waves[i]}
	}
	ok(t, b.s.JobCreate(b.ctx, &j, store.WorkersOf(ws)), "JobCreate(staged)")
	return j, b.workers(t, b.acct, j.ID)
}

func testWaves(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("StoredWaves", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.stagedJob(t, 0, 1, 1, 2)
		got := b.getJob(t, j.ID)
		equal(t, "Strategy", got.Strategy, `{"Waves":[1,"100%"]}`)
		equal(t, "LastWave", got.LastWave, 2)
		equal(t, "CurrentWave", got.CurrentWave, 0)
		var waves []int
		for _, w := range ws {
			waves = append(waves, w.Wave)
		}
		equal(t, "worker waves", waves, []int{0, 1, 1, 2})
		_, plain := b.simpleJob(t, 2)
		for _, w := range plain {
			equal(t, "plain worker wave", w.Wave, 0)
		}
	})

	t.Run("ClaimOnlyCurrentWave", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.stagedJob(t, 0, 1, 1)
		plain, pws := b.simpleJob(t, 1)
		b.start(t, j.ID)
		b.start(t, plain.ID)
		first := b.claim(t, "a", b.now, 10)
		equal(t, "claimed in wave 0 (and the plain job)", idsOf(first, workerID), sorted(ws[0].ID, pws[0].ID))
		equal(t, "claimable while wave 0 runs", len(b.claim(t, "b", b.now, 10)), 0)
		for _, w := range first {
			b.finish(t, w, store.WorkerSuccess)
		}
		equal(t, "claimable before the advance", len(b.claim(t, "b", b.now, 10)), 0)
		if _, ok, err := b.s.WorkerNextDue(b.ctx); err != nil || ok {
			t.Fatalf("WorkerNextDue before the advance = ok %v, %v; want nothing due (the wave waits)", ok, err)
		}

		wv, err := b.s.JobWaveGet(b.ctx, j.ID)
		ok(t, err, "JobWaveGet")
		equal(t, "Running", wv.Running, int64(0))
		equal(t, "Finished", wv.Finished, int64(1))
		equal(t, "Failed", wv.Failed, int64(0))
		sameMS(t, "LastFinished", wv.LastFinished, b.now)

		ok(t, b.s.JobWaveAdvance(b.ctx, store.JobWaveAdvanceParams{JobID: j.ID, From: 0, Now: b.now}), "JobWaveAdvance(0)")
		isErr(t, b.s.JobWaveAdvance(b.ctx, store.JobWaveAdvanceParams{JobID: j.ID, From: 0, Now: b.now}), store.ErrConflict, "JobWaveAdvance(0) again")
		equal(t, "CurrentWave", b.getJob(t, j.ID).CurrentWave, 1)
		equal(t, "claimed in wave 1", idsOf(b.claim(t, "a", b.now, 10), workerID), sorted(ws[1].ID, ws[2].ID))
		isErr(t, b.s.JobWaveAdvance(b.ctx, store.JobWaveAdvanceParams{JobID: j.ID, From: 1, Now: b.now}), store.ErrConflict,
			"JobWaveAdvance past the last wave")
	})

	t.Run("BakeDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.stagedJob(t, 0, 1)
		isErr(t, b.s.JobWaveBake(b.ctx, j.ID, 0, b.now.Add(time.Second)), store.ErrConflict, "JobWaveBake of an editing job")
		b.start(t, j.ID)
		until := b.now.Add(2 * time.Second)
		ok(t, b.s.JobWaveBake(b.ctx, j.ID, 0, until), "JobWaveBake")
		isErr(t, b.s.JobWaveBake(b.ctx, j.ID, 1, until), store.ErrConflict, "JobWaveBake of another wave")
		due, next, found, err := b.s.JobBakeDue(b.ctx, b.now)
		ok(t, err, "JobBakeDue(now)")
		if len(due) != 0 || !found {
			t.Fatalf("JobBakeDue(now) = %v, found %v; want none due, one pending", due, found)
		}
		sameMS(t, "next bake end", next, until)
		due, _, found, err = b.s.JobBakeDue(b.ctx, until)
		ok(t, err, "JobBakeDue(until)")
		equal(t, "due at the bake end", due, []int64{j.ID})
		equal(t, "later bake ends", found, false)
		ok(t, b.s.JobWaveAdvance(b.ctx, store.JobWaveAdvanceParams{JobID: j.ID, From: 0, Now: until}), "JobWaveAdvance")
		due, _, found, err = b.s.JobBakeDue(b.ctx, until)
		ok(t, err, "JobBakeDue after the advance")
		if len(due) != 0 || found {
			t.Fatalf("JobBakeDue after the advance = %v, %v; the advance clears the bake", due, found)
		}
	})

	t.Run("Halt", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc     string
			rollback bool
		}{
			{desc: "later waves never run"},
			{desc: "successful workers roll back", rollback: true},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				j, ws := b.stagedJob(t, 0, 0, 1, 2)
				b.start(t, j.ID)
				claimed := b.claim(t, "a", b.now, 10)
				equal(t, "claimed", idsOf(claimed, workerID), sorted(ws[0].ID, ws[1].ID))
				for _, w := range claimed {
					status := store.WorkerSuccess
					if w.ID == ws[1].ID {
						status = store.WorkerError
					}
					b.finish(t, w, status)
				}
				wv, err := b.s.JobWaveGet(b.ctx, j.ID)
				ok(t, err, "JobWaveGet")
				equal(t, "Finished, Failed", [2]int64{wv.Finished, wv.Failed}, [2]int64{2, 1})
				isErr(t, b.s.JobWaveHalt(b.ctx, store.JobWaveHaltParams{JobID: j.ID, Wave: 1, Message: "x", Now: b.now}), store.ErrConflict,
					"JobWaveHalt in another wave")
				ok(t, b.s.JobWaveHalt(b.ctx, store.JobWaveHaltParams{JobID: j.ID, Wave: 0, Message: "not started: wave 1 halted",
					Rollback: tc.rollback, Now: b.now}), "JobWaveHalt")
				isErr(t, b.s.JobWaveHalt(b.ctx, store.JobWaveHaltParams{JobID: j.ID, Wave: 0, Message: "x", Now: b.now}), store.ErrConflict,
					"JobWaveHalt twice")
				isErr(t, b.s.JobWaveAdvance(b.ctx, store.JobWaveAdvanceParams{JobID: j.ID, From: 0, Now: b.now}), store.ErrConflict,
					"JobWaveAdvance of a halted job")
				equal(t, "HaltedWave", b.getJob(t, j.ID).HaltedWave, 1)
				for _, id := range []int64{ws[2].ID, ws[3].ID} {
					w := b.worker(t, id)
					if w.Status != store.WorkerError || !strings.HasPrefix(w.LastError, "not started:") {
						t.Errorf("later-wave worker %d = %s %q, want error, not started", id, w.Status, w.LastError)
					}
				}
				wantFirst := store.WorkerSuccess
				if tc.rollback {
					wantFirst = store.WorkerRollback
				}
				equal(t, "successful worker", b.worker(t, ws[0].ID).Status, wantFirst)
				equal(t, "failed worker", b.worker(t, ws[1].ID).Status, store.WorkerError)
				status, err := b.s.JobFinishIfDone(b.ctx, j.ID, b.now)
				ok(t, err, "JobFinishIfDone")
				equal(t, "job status", status, store.JobError)
				if tc.rollback {
					equal(t, "claimable rollback", idsOf(b.claim(t, "a", b.now, 10), workerID), []int64{ws[0].ID})
				}

				evs, err := b.s.JobEventsDue(b.ctx, store.JobEventsDueParams{Limit: 10})
				ok(t, err, "JobEventsDue")
				var halts int
				for _, ev := range evs {
					if ev.Job.ID == j.ID && ev.Kind == store.JobEventKindHalt {
						halts++
						ok(t, b.s.NotificationEmit(b.ctx, store.NotificationEmitParams{Kind: ev.Kind, JobID: j.ID, Mark: ev.Mark, Now: b.now}),
							"NotificationEmit(halt)")
					}
				}
				equal(t, "halt events", halts, 1)
				err = b.s.NotificationEmit(b.ctx, store.NotificationEmitParams{Kind: store.JobEventKindHalt, JobID: j.ID, Now: b.now})
				if !errors.Is(err, store.ErrConflict) {
					t.Fatalf("second halt emit: %v, want ErrConflict", err)
				}
			})
		}
	})

	t.Run("RollbackOfLaterWaveIsClaimable", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.stagedJob(t, 0, 1)
		b.start(t, j.ID)
		b.finish(t, b.claimOne(t, "a", b.now, ws[0].ID), store.WorkerError)
		ok(t, b.s.JobWaveHalt(b.ctx, store.JobWaveHaltParams{JobID: j.ID, Wave: 0, Message: "not started", Now: b.now}), "JobWaveHalt")
		ok(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, ws[1].ID, b.now), "WorkerRequestRollback(later wave)")
		b.claimOne(t, "a", b.now, ws[1].ID)
	})
}
