package storetest

import (
	"cmp"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testJobs(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("CreateAndGet", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c1, c2 := b.cert(t, b.acct, "c1", nil), b.cert(t, b.acct, "c2", nil)
		r1 := b.resource(t, b.acct, "r1", nil)
		r2 := b.resource(t, b.acct, "r2", func(r *store.Resource) { r.CloudName, r.CloudProduct = "tencent", "clb" })
		ct := b.contact(t, b.acct, "ops", "ops@example.com", "1")
		j := store.Job{AccountID: b.acct, Name: "renew shop", JobType: "deploy", CertIDs: []int64{c1.ID, c2.ID},
			ResourceIDs: []int64{r1.ID, r2.ID}, ContactIDs: []int64{ct.ID}, Config: `{"notify":true}`,
			ScheduleTime: b.now.Add(time.Hour)}
		ws := []store.Worker{
			{ResourceID: r1.ID, CertID: c1.ID, CloudName: "aliyun", CloudProduct: "cdn"},
			{ResourceID: r2.ID, CertID: c2.ID, CloudName: "tencent", CloudProduct: "clb"},
		}
		ok(t, b.s.JobCreate(b.ctx, &j, store.WorkersOf(ws)), "JobCreate")
		equal(t, "Status after JobCreate", j.Status, store.JobEditing)

		got := b.getJob(t, j.ID)
		want := j
		want.ScheduleTime, want.Created, want.Modified = msTime(j.ScheduleTime), msTime(j.Created), msTime(j.Modified)
		equal(t, "JobGet", got, want)
		if got.Created.IsZero() || !got.StartTime.IsZero() || !got.EndTime.IsZero() || got.Rollback {
			t.Errorf("JobGet = %+v, want Created set, no start/end, no rollback", got)
		}

		gotWs := b.workers(t, b.acct, j.ID)
		if len(gotWs) != 2 {
			t.Fatalf("WorkerList = %d workers, want 2", len(gotWs))
		}
		for i, w := range gotWs {
			if w.ID == 0 || w.AccountID != b.acct || w.JobID != j.ID || w.Status != store.WorkerEditing ||
				w.ResourceID != ws[i].ResourceID || w.CertID != ws[i].CertID || w.CloudName != ws[i].CloudName ||
				w.CloudProduct != ws[i].CloudProduct || w.LeaseToken != 0 || w.LeaseOwner != "" || w.HasPrevious {
				t.Errorf("worker %d = %+v, want a fresh editing worker like %+v", i, w, ws[i])
			}
			got, err := b.s.WorkerGet(b.ctx, b.acct, w.ID)
			ok(t, err, "WorkerGet")
			equal(t, "WorkerGet", got, w)
			_, err = b.s.WorkerGet(b.ctx, b.other, w.ID)
			isErr(t, err, store.ErrNotFound, "WorkerGet(another account's)")
		}

		_, err := b.s.JobGet(b.ctx, b.other, j.ID)
		isErr(t, err, store.ErrNotFound, "JobGet(another account's)")
		_, err = b.s.JobGet(b.ctx, b.acct, j.ID+1000)
		isErr(t, err, store.ErrNotFound, "JobGet(unknown)")
	})

	t.Run("CreateInChunks", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		rs := b.resources(t, b.acct, "r", 11)
		rs[10] = b.resource(t, b.acct, "clb", func(r *store.Resource) { r.CloudName, r.CloudProduct = "tencent", "clb" })
		// 1,100 workers given as chunks of 600 and 500: more than one chunk,
		// and more than one multi-row INSERT within a chunk. A resource may
		// have several workers; the certificate is named twice.
		var ws []store.Worker
		j := store.Job{AccountID: b.acct, Name: "big", JobType: "deploy", CertIDs: []int64{c.ID, c.ID}, Config: `{}`}
		for i := range 1100 {
			r := rs[i%len(rs)]
			if i < len(rs) {
				j.ResourceIDs = append(j.ResourceIDs, r.ID)
			}
			ws = append(ws, store.Worker{ResourceID: r.ID, CertID: c.ID, CloudName: r.CloudName, CloudProduct: r.CloudProduct, Wave: i / 400})
		}
		chunks := func(emit func([]store.Worker) error) error {
			if err := emit(ws[:600]); err != nil {
				return err
			}
			return emit(ws[600:])
		}
		ok(t, b.s.JobCreate(b.ctx, &j, chunks), "JobCreate(1,100 workers in two chunks)")
		equal(t, "Products", j.Products, []string{"cdn", "clb"})
		equal(t, "JobGet().Products", b.getJob(t, j.ID).Products, []string{"cdn", "clb"})
		got := b.workers(t, b.acct, j.ID)
		if len(got) != len(ws) {
			t.Fatalf("WorkerList = %d workers, want %d", len(got), len(ws))
		}
		for i, w := range got {
			if w.ResourceID != ws[i].ResourceID || w.CloudProduct != ws[i].CloudProduct || w.Wave != ws[i].Wave || w.Status != store.WorkerEditing {
				t.Fatalf("worker %d = %+v, want %+v (in the order given)", i, w, ws[i])
			}
		}
		isErr(t, b.s.ResourceDelete(b.ctx, b.acct, rs[10].ID), store.ErrInUse, "ResourceDelete(a resource of the job)")
		isErr(t, b.s.CertificateDelete(b.ctx, b.acct, c.ID), store.ErrInUse, "CertificateDelete(the job's certificate)")
	})

	t.Run("FailingChunkLeavesNoJob", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		rs := b.resources(t, b.acct, "r", 3)
		boom := errors.New("the third resource vanished")
		failing := func(emit func([]store.Worker) error) error {
			if err := emit([]store.Worker{{ResourceID: rs[0].ID, CertID: c.ID, CloudName: "aliyun", CloudProduct: "cdn"}}); err != nil {
				return err
			}
			if err := emit([]store.Worker{{ResourceID: rs[1].ID, CertID: c.ID, CloudName: "aliyun", CloudProduct: "cdn"}}); err != nil {
				return err
			}
			return boom
		}
		j := store.Job{AccountID: b.acct, Name: "doomed", JobType: "deploy", CertIDs: []int64{c.ID},
			ResourceIDs: idsOf(rs, resourceID), Config: `{}`}
		isErr(t, b.s.JobCreate(b.ctx, &j, failing), boom, "JobCreate(failing chunks)")
		jobs, total, err := b.s.JobList(b.ctx, store.JobListParams{AccountID: b.acct, Limit: 10})
		ok(t, err, "JobList")
		if total != 0 || len(jobs) != 0 {
			t.Errorf("JobList after a failed JobCreate = %d jobs (total %d), want none", len(jobs), total)
		}
		// Nothing references the resources: no job_refs row survived.
		ok(t, b.s.ResourceDelete(b.ctx, b.acct, rs[2].ID), "ResourceDelete(a resource of the failed job)")

		// A failing JobReplace keeps the job as it was.
		kept, keptWs := b.job(t, b.acct, c.ID, rs[0], rs[1])
		repl := kept
		repl.Name = "replaced"
		isErr(t, b.s.JobReplace(b.ctx, &repl, failing), boom, "JobReplace(failing chunks)")
		equal(t, "Name after a failed JobReplace", b.getJob(t, kept.ID).Name, kept.Name)
		equal(t, "workers after a failed JobReplace", b.workers(t, b.acct, kept.ID), keptWs)
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mk := func(typ string) store.Job {
			j := store.Job{AccountID: b.acct, Name: typ, JobType: typ, Config: `{}`}
			ok(t, b.s.JobCreate(b.ctx, &j, nil), "JobCreate")
			return j
		}
		d1, d2, d3, r1, r2 := mk("deploy"), mk("deploy"), mk("deploy"), mk("renew"), mk("renew")
		b.schedule(t, d2.ID, b.now.Add(time.Hour))
		b.schedule(t, r2.ID, b.now.Add(time.Hour))
		theirs := store.Job{AccountID: b.other, Name: "theirs", JobType: "deploy", Config: `{}`}
		ok(t, b.s.JobCreate(b.ctx, &theirs, nil), "JobCreate(theirs)")
		all := sorted(d1.ID, d2.ID, d3.ID, r1.ID, r2.ID)
		cases := []struct {
			desc string
			p    store.JobListParams
			want []int64
		}{
			{desc: "all", want: all},
			{desc: "status", p: store.JobListParams{Status: store.JobPending}, want: sorted(d2.ID, r2.ID)},
			{desc: "job type", p: store.JobListParams{JobType: "renew"}, want: sorted(r1.ID, r2.ID)},
			{desc: "status and type", p: store.JobListParams{Status: store.JobEditing, JobType: "deploy"}, want: sorted(d1.ID, d3.ID)},
			{desc: "no match", p: store.JobListParams{Status: store.JobProcessing}, want: []int64{}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID, p.Limit = b.acct, 100
				list, total, err := b.s.JobList(b.ctx, p)
				ok(t, err, "JobList")
				equal(t, "IDs", idsOf(list, jobID), tc.want)
				equal(t, "total", total, int64(len(tc.want)))
			})
		}
		t.Run("paging", func(t *testing.T) {
			var seen []int64
			for off := 0; off < 5; off += 2 {
				list, total, err := b.s.JobList(b.ctx, store.JobListParams{AccountID: b.acct, Limit: 2, Offset: off})
				ok(t, err, "JobList(offset %d)", off)
				equal(t, "total", total, int64(5))
				equal(t, "rows", len(list), min(2, 5-off))
				seen = append(seen, idsOf(list, jobID)...)
			}
			equal(t, "pages together", sorted(seen...), all)
		})
	})

	t.Run("Replace", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c1, c2 := b.cert(t, b.acct, "c1", nil), b.cert(t, b.acct, "c2", nil)
		rs := b.resources(t, b.acct, "r", 3)
		j, _ := b.job(t, b.acct, c1.ID, rs[0], rs[1])

		// A replacement built from scratch, as an API handler would: no Status.
		repl := store.Job{ID: j.ID, AccountID: b.acct, Name: "replaced", JobType: j.JobType, CertIDs: []int64{c2.ID},
			ResourceIDs: []int64{rs[2].ID}, ContactIDs: []int64{}, Config: `{"v":2}`, ScheduleTime: b.now.Add(2 * time.Hour)}
		ok(t, b.s.JobReplace(b.ctx, &repl, store.WorkersOf([]store.Worker{{ResourceID: rs[2].ID, CertID: c2.ID, CloudName: "aliyun", CloudProduct: "slb"}})), "JobReplace")
		got := b.getJob(t, j.ID)
		equal(t, "Name", got.Name, "replaced")
		equal(t, "Status", got.Status, store.JobEditing)
		equal(t, "CertIDs", got.CertIDs, []int64{c2.ID})
		equal(t, "ResourceIDs", got.ResourceIDs, []int64{rs[2].ID})
		equal(t, "ContactIDs", got.ContactIDs, []int64{})
		equal(t, "Config", got.Config, `{"v":2}`)
		sameMS(t, "ScheduleTime", got.ScheduleTime, repl.ScheduleTime)
		ws := b.workers(t, b.acct, j.ID)
		if len(ws) != 1 || ws[0].ResourceID != rs[2].ID || ws[0].CertID != c2.ID || ws[0].CloudProduct != "slb" || ws[0].Status != store.WorkerEditing {
			t.Fatalf("workers after JobReplace = %+v, want one editing worker on %d with cert %d", ws, rs[2].ID, c2.ID)
		}
		// References follow the replacement: the old certificate is free, the new one is in use.
		ok(t, b.s.CertificateDelete(b.ctx, b.acct, c1.ID), "CertificateDelete(replaced-away certificate)")
		isErr(t, b.s.CertificateDelete(b.ctx, b.acct, c2.ID), store.ErrInUse, "CertificateDelete(new certificate)")

		// The replaced job runs like any other: its workers follow it.
		b.schedule(t, j.ID, b.now)
		equal(t, "worker status after scheduling", b.worker(t, ws[0].ID).Status, store.WorkerPending)

		cases := []struct {
			desc string
			id   int64
			acct int64
			want error
		}{
			{desc: "pending job", id: j.ID, acct: b.acct, want: store.ErrConflict},
			{desc: "unknown job", id: j.ID + 1000, acct: b.acct, want: store.ErrNotFound},
			{desc: "another account's job", id: j.ID, acct: b.other, want: store.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				r := store.Job{ID: tc.id, AccountID: tc.acct, Name: "nope", Config: `{}`}
				isErr(t, b.s.JobReplace(b.ctx, &r, nil), tc.want, "JobReplace")
			})
		}
		equal(t, "Name after refused replaces", b.getJob(t, j.ID).Name, "replaced")
		equal(t, "workers after refused replaces", len(b.workers(t, b.acct, j.ID)), 1)

		started, err := b.s.JobStartDue(b.ctx, b.now)
		ok(t, err, "JobStartDue")
		equal(t, "started", started, []int64{j.ID})
		r := store.Job{ID: j.ID, AccountID: b.acct, Name: "nope", Config: `{}`}
		isErr(t, b.s.JobReplace(b.ctx, &r, nil), store.ErrConflict, "JobReplace(processing job)")
	})

	t.Run("SetStatus", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, ws := b.simpleJob(t, 2)
		workerStatuses := func() []store.WorkerStatus {
			var out []store.WorkerStatus
			for _, w := range b.workers(t, b.acct, j.ID) {
				out = append(out, w.Status)
			}
			return out
		}
		at := b.now.Add(time.Hour)
		ok(t, b.s.JobSetStatus(b.ctx, store.JobSetStatusParams{AccountID: b.acct, JobID: j.ID, From: []store.JobStatus{store.JobEditing},
			To: store.JobPending, ScheduleTime: at, Now: b.now}), "JobSetStatus(editing → pending)")
		got := b.getJob(t, j.ID)
		equal(t, "job status", got.Status, store.JobPending)
		sameMS(t, "ScheduleTime", got.ScheduleTime, at)
		equal(t, "worker statuses", workerStatuses(), []store.WorkerStatus{store.WorkerPending, store.WorkerPending})

		ok(t, b.s.JobSetStatus(b.ctx, store.JobSetStatusParams{AccountID: b.acct, JobID: j.ID,
			From: []store.JobStatus{store.JobPending, store.JobScheduling}, To: store.JobEditing, Now: b.now}), "JobSetStatus(pending → editing)")
		got = b.getJob(t, j.ID)
		equal(t, "job status", got.Status, store.JobEditing)
		sameMS(t, "ScheduleTime kept", got.ScheduleTime, at)
		equal(t, "worker statuses", workerStatuses(), []store.WorkerStatus{store.WorkerEditing, store.WorkerEditing})

		cases := []struct {
			desc string
			p    store.JobSetStatusParams
			want error
		}{
			{desc: "from a status the job is not in", p: store.JobSetStatusParams{AccountID: b.acct, JobID: j.ID,
				From: []store.JobStatus{store.JobPending}, To: store.JobEditing}, want: store.ErrConflict},
			{desc: "unknown job", p: store.JobSetStatusParams{AccountID: b.acct, JobID: j.ID + 1000,
				From: []store.JobStatus{store.JobEditing}, To: store.JobPending}, want: store.ErrNotFound},
			{desc: "another account's job", p: store.JobSetStatusParams{AccountID: b.other, JobID: j.ID,
				From: []store.JobStatus{store.JobEditing}, To: store.JobPending}, want: store.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.Now = b.now
				isErr(t, b.s.JobSetStatus(b.ctx, p), tc.want, "JobSetStatus")
			})
		}
		equal(t, "job status after refused moves", b.getJob(t, j.ID).Status, store.JobEditing)

		// Once running, a job can no longer go back to editing.
		b.start(t, j.ID)
		isErr(t, b.s.JobSetStatus(b.ctx, store.JobSetStatusParams{AccountID: b.acct, JobID: j.ID,
			From: []store.JobStatus{store.JobPending, store.JobScheduling}, To: store.JobEditing, Now: b.now}), store.ErrConflict,
			"JobSetStatus(processing → editing)")
		equal(t, "worker status of a started job", b.worker(t, ws[0].ID).Status, store.WorkerScheduling)
	})

	t.Run("NextDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, has, err := b.s.JobNextDue(b.ctx)
		ok(t, err, "JobNextDue (empty)")
		if has {
			t.Fatalf("JobNextDue on an empty store: ok = true")
		}
		editing := store.Job{AccountID: b.acct, Name: "e", JobType: "deploy", Config: `{}`, ScheduleTime: b.now.Add(time.Minute)}
		ok(t, b.s.JobCreate(b.ctx, &editing, nil), "JobCreate")
		_, has, err = b.s.JobNextDue(b.ctx)
		ok(t, err, "JobNextDue (editing only)")
		if has {
			t.Fatalf("JobNextDue counts an editing job")
		}
		late, _ := b.simpleJob(t, 1)
		early, _ := b.simpleJob(t, 1)
		b.schedule(t, late.ID, b.now.Add(2*time.Hour))
		b.schedule(t, early.ID, b.now.Add(time.Hour))
		next, has, err := b.s.JobNextDue(b.ctx)
		ok(t, err, "JobNextDue")
		if !has {
			t.Fatalf("JobNextDue: ok = false with pending jobs")
		}
		sameMS(t, "JobNextDue", next, b.now.Add(time.Hour))

		ids, err := b.s.JobStartDue(b.ctx, b.now.Add(time.Hour))
		ok(t, err, "JobStartDue")
		equal(t, "JobStartDue", ids, []int64{early.ID})
		next, has, err = b.s.JobNextDue(b.ctx)
		ok(t, err, "JobNextDue")
		if !has {
			t.Fatalf("JobNextDue: ok = false with a pending job")
		}
		sameMS(t, "JobNextDue after the early job started", next, b.now.Add(2*time.Hour))
	})

	t.Run("StartDue", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		due, dueWs := b.simpleJob(t, 2)
		future, futureWs := b.simpleJob(t, 1)
		editing, editingWs := b.simpleJob(t, 1)
		b.schedule(t, due.ID, b.now.Add(-time.Minute))
		b.schedule(t, future.ID, b.now.Add(time.Hour))

		ids, err := b.s.JobStartDue(b.ctx, b.now)
		ok(t, err, "JobStartDue")
		equal(t, "started", ids, []int64{due.ID})
		got := b.getJob(t, due.ID)
		equal(t, "due job status", got.Status, store.JobProcessing)
		sameMS(t, "due job StartTime", got.StartTime, b.now)
		for _, w := range dueWs {
			w = b.worker(t, w.ID)
			equal(t, "due job worker status", w.Status, store.WorkerScheduling)
			if w.NextRunAt.After(b.now) {
				t.Errorf("due job worker NextRunAt %v after now %v", w.NextRunAt, b.now)
			}
		}
		equal(t, "future job status", b.getJob(t, future.ID).Status, store.JobPending)
		equal(t, "future job worker status", b.worker(t, futureWs[0].ID).Status, store.WorkerPending)
		equal(t, "editing job status", b.getJob(t, editing.ID).Status, store.JobEditing)
		equal(t, "editing job worker status", b.worker(t, editingWs[0].ID).Status, store.WorkerEditing)

		ids, err = b.s.JobStartDue(b.ctx, b.now)
		ok(t, err, "JobStartDue again")
		equal(t, "started again", len(ids), 0)

		ids, err = b.s.JobStartDue(b.ctx, b.now.Add(time.Hour))
		ok(t, err, "JobStartDue later")
		equal(t, "started later", ids, []int64{future.ID})
		equal(t, "future job worker status", b.worker(t, futureWs[0].ID).Status, store.WorkerScheduling)

		unfinished, err := b.s.JobUnfinishedIDs(b.ctx)
		ok(t, err, "JobUnfinishedIDs")
		equal(t, "JobUnfinishedIDs", sorted(unfinished...), sorted(due.ID, future.ID))
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc   string
			status store.WorkerStatus // the job's single worker is driven there (and the job finished when it is final)
			acct   func(b *bundle) int64
			want   error
		}{
			{desc: "editing", status: store.WorkerEditing},
			{desc: "pending", status: store.WorkerPending},
			{desc: "processing, not yet claimed", status: store.WorkerScheduling, want: store.ErrConflict},
			{desc: "processing, claimed", status: store.WorkerProcessing, want: store.ErrConflict},
			{desc: "success", status: store.WorkerSuccess},
			{desc: "error", status: store.WorkerError},
			{desc: "rolling back", status: store.WorkerRollback, want: store.ErrConflict},
			{desc: "rolled back", status: store.WorkerRollbackSuccess},
			{desc: "another account's", status: store.WorkerEditing, acct: func(b *bundle) int64 { return b.other }, want: store.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				j, w := b.workerIn(t, tc.status)
				if _, err := b.s.JobFinishIfDone(b.ctx, j.ID, b.now); err != nil {
					t.Fatalf("JobFinishIfDone: %v", err)
				}
				acct := b.acct
				if tc.acct != nil {
					acct = tc.acct(b)
				}
				isErr(t, b.s.JobDelete(b.ctx, acct, j.ID), tc.want, "JobDelete")
				_, jobErr := b.s.JobGet(b.ctx, b.acct, j.ID)
				_, workerErr := b.s.WorkerGet(b.ctx, b.acct, w.ID)
				if tc.want == nil {
					isErr(t, jobErr, store.ErrNotFound, "JobGet after delete")
					isErr(t, workerErr, store.ErrNotFound, "WorkerGet after delete (cascade)")
					equal(t, "workers listed after delete", len(b.workers(t, b.acct, j.ID)), 0)
					isErr(t, b.s.JobDelete(b.ctx, b.acct, j.ID), store.ErrNotFound, "JobDelete again")
				} else {
					ok(t, jobErr, "JobGet after a refused delete")
					ok(t, workerErr, "WorkerGet after a refused delete")
				}
			})
		}
	})

	t.Run("FinishIfDone", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc string
			// outcomes drives one worker each: success, error, claimed (still
			// processing), retry (processing, due later) or waiting (never claimed).
			outcomes []string
			want     store.JobStatus
		}{
			{desc: "all succeeded", outcomes: []string{"success", "success"}, want: store.JobSuccess},
			{desc: "one failed", outcomes: []string{"success", "error"}, want: store.JobError},
			{desc: "all failed", outcomes: []string{"error", "error"}, want: store.JobError},
			{desc: "one still running", outcomes: []string{"success", "claimed"}, want: store.JobProcessing},
			{desc: "one waiting to retry", outcomes: []string{"error", "retry"}, want: store.JobProcessing},
			{desc: "one never claimed", outcomes: []string{"success", "waiting"}, want: store.JobProcessing},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				j, ws := b.simpleJob(t, len(tc.outcomes))
				b.start(t, j.ID)
				for i, out := range tc.outcomes {
					if out == "waiting" {
						continue
					}
					w := b.claimOne(t, "owner", b.now, ws[i].ID)
					switch out {
					case "success", "error":
						b.finish(t, w, store.WorkerStatus(out))
					case "retry":
						ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken,
							Status: store.WorkerProcessing, Attempts: 1, NextRunAt: b.now.Add(time.Hour), Now: b.now}), "WorkerFinish(retry)")
					}
				}
				end := b.now.Add(time.Minute)
				got, err := b.s.JobFinishIfDone(b.ctx, j.ID, end)
				ok(t, err, "JobFinishIfDone")
				equal(t, "JobFinishIfDone", got, tc.want)
				job := b.getJob(t, j.ID)
				equal(t, "job status", job.Status, tc.want)
				if tc.want == store.JobProcessing {
					if !job.EndTime.IsZero() {
						t.Errorf("EndTime %v set on an unfinished job", job.EndTime)
					}
				} else {
					sameMS(t, "EndTime", job.EndTime, end)
				}
			})
		}
		t.Run("editing job is left alone", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			j, _ := b.simpleJob(t, 1)
			got, err := b.s.JobFinishIfDone(b.ctx, j.ID, b.now)
			ok(t, err, "JobFinishIfDone")
			equal(t, "JobFinishIfDone", got, store.JobEditing)
		})
		t.Run("unknown job", func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			_, err := b.s.JobFinishIfDone(b.ctx, 4242, b.now)
			isErr(t, err, store.ErrNotFound, "JobFinishIfDone(unknown)")
		})
	})

	t.Run("StatusCounts", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "c", nil)
		var rs []store.Resource
		for i, p := range [][2]string{{"aliyun", "cdn"}, {"aliyun", "cdn"}, {"aliyun", "cdn"}, {"aliyun", "slb"}, {"aliyun", "slb"}, {"tencent", "clb"}, {"tencent", "clb"}} {
			rs = append(rs, b.resource(t, b.acct, string(rune('a'+i)), func(r *store.Resource) { r.CloudName, r.CloudProduct = p[0], p[1] }))
		}
		j, ws := b.job(t, b.acct, c.ID, rs...)
		b.start(t, j.ID)
		claimed := map[int64]store.Worker{}
		for _, w := range b.claim(t, "owner", b.now, 100) {
			claimed[w.ID] = w
		}
		if len(claimed) != len(ws) {
			t.Fatalf("claimed %d workers, want %d", len(claimed), len(ws))
		}
		// a, b: success; c: error; d: rollback requested; e: rolled back;
		// f: rollback failed; g: still processing.
		for i, status := range []store.WorkerStatus{store.WorkerSuccess, store.WorkerSuccess, store.WorkerError, store.WorkerSuccess, store.WorkerError, store.WorkerSuccess} {
			b.finish(t, claimed[ws[i].ID], status)
		}
		for _, i := range []int{3, 4, 5} {
			ok(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, ws[i].ID, b.now), "WorkerRequestRollback")
		}
		// All three rollbacks are claimable; d stays claimed, e and f finish.
		rolling := b.claim(t, "owner", b.now.Add(time.Second), 10)
		equal(t, "claimed rollbacks", idsOf(rolling, workerID), sorted(ws[3].ID, ws[4].ID, ws[5].ID))
		for _, w := range rolling {
			switch w.ID {
			case ws[4].ID:
				b.finish(t, w, store.WorkerRollbackSuccess)
			case ws[5].ID:
				b.finish(t, w, store.WorkerRollbackError)
			}
		}
		got, err := b.s.JobStatusCounts(b.ctx, b.acct, j.ID)
		ok(t, err, "JobStatusCounts")
		slices.SortFunc(got.ByProduct, func(x, y store.ProductCount) int {
			return cmp.Or(strings.Compare(x.CloudName, y.CloudName), strings.Compare(x.CloudProduct, y.CloudProduct))
		})
		equal(t, "JobStatusCounts", got, store.JobCounts{Workers: 7, Success: 2, Failed: 1, Rollback: 3, RollbackSuccess: 1, RollbackFailed: 1,
			ByProduct: []store.ProductCount{
				{CloudName: "aliyun", CloudProduct: "cdn", Count: 3},
				{CloudName: "aliyun", CloudProduct: "slb", Count: 2},
				{CloudName: "tencent", CloudProduct: "clb", Count: 2},
			}})

		theirs, err := b.s.JobStatusCounts(b.ctx, b.other, j.ID)
		if err == nil && theirs.Workers != 0 {
			t.Errorf("JobStatusCounts(another account's job) = %+v, want nothing or ErrNotFound", theirs)
		} else if err != nil {
			isErr(t, err, store.ErrNotFound, "JobStatusCounts(another account's job)")
		}
	})
}
