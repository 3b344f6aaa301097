package e2e

import (
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestJobScheduleTime checks that a pending job waits for its ScheduleTime.
func TestJobScheduleTime(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine, "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")
		rcv := newCountingReceiver(t)
		cert, _ := r.upload("www", certstest.Options{DNSNames: []string{"www.example.test"}})
		res := r.webhook(rcv.URL, "www.example.test")
		at := time.Now().Add(3 * time.Second)
		job := r.createJob(jobSpec{certs: []int64{cert}, resources: []int64{res}, schedule: at})
		r.mustSetStatus(job, "pending")

		// A job due now, started after the scheduled one was pending: the
		// engine's passes that started and ended it saw the scheduled job too.
		nowCert, _ := r.upload("now", certstest.Options{DNSNames: []string{"now.example.test"}})
		now := r.createJob(jobSpec{name: "now", certs: []int64{nowCert}, resources: []int64{r.webhook(rcv.URL, "now.example.test")}})
		r.run(now, "success")
		if st := r.status(job); st != "pending" {
			t.Fatalf("after a job due now ran, before its ScheduleTime, the job is %s", st)
		}
		if time.Now().After(at) {
			t.Fatalf("the job due now took until the ScheduleTime: nothing shown (a slow machine?)")
		}
		if n := rcv.accepted("www.example.test"); n != 0 {
			t.Fatalf("the receiver got %d requests before the ScheduleTime", n)
		}
		r.waitEnd(job, "success")
		d := r.describe(job)
		sched, start := msField(t, "ScheduleTime", d.ScheduleTime), msField(t, "StartTime", d.StartTime)
		if sched != at.UnixMilli() {
			t.Fatalf("ScheduleTime = %d, want %d", sched, at.UnixMilli())
		}
		if start < sched {
			t.Fatalf("StartTime %d is before ScheduleTime %d", start, sched)
		}
		if rcv.accepted("www.example.test") != 1 {
			t.Fatalf("the receiver accepted %d deliveries, want 1", rcv.accepted("www.example.test"))
		}
	})
}

// TestJobStatusTransitions moves a job between editing and pending and
// checks the operations refused in the wrong status.
func TestJobStatusTransitions(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine, "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")
		rcv := newCountingReceiver(t)
		cert, _ := r.upload("www", certstest.Options{DNSNames: []string{"www.example.test", "api.example.test"}})
		www := r.webhook(rcv.URL, "www.example.test")
		api := r.webhook(rcv.URL, "api.example.test")

		// pending (in an hour) → editing → updated → pending (now) → success.
		job := r.createJob(jobSpec{name: "before", certs: []int64{cert}, resources: []int64{www}, schedule: time.Now().Add(time.Hour)})
		r.mustSetStatus(job, "pending")
		update := func() error {
			_, err := r.c.UpdateDeploymentJob(&cas.UpdateDeploymentJobRequest{JobId: tea.Int64(job), Name: tea.String("after"),
				ResourceIds: tea.String(joinIDs(www, api)), ScheduleTime: tea.Int64(time.Now().UnixMilli())})
			return err
		}
		wantAPIError(t, update(), "IncorrectStatus", "pending")
		r.mustSetStatus(job, "editing")
		if st := r.status(job); st != "editing" {
			t.Fatalf("job is %s, want editing", st)
		}
		if err := update(); err != nil {
			t.Fatalf("update an editing job: %v", err)
		}
		d := r.describe(job)
		if tea.StringValue(d.Name) != "after" || len(r.workers(job)) != 2 {
			t.Fatalf("after the update: name %q, %d workers", tea.StringValue(d.Name), len(r.workers(job)))
		}
		for _, w := range r.workers(job) {
			if w.Status != "editing" {
				t.Fatalf("worker %d of an editing job is %s", w.ID, w.Status)
			}
		}
		r.run(job, "success")
		if rcv.accepted("www.example.test") != 1 || rcv.accepted("api.example.test") != 1 {
			t.Fatalf("deliveries: www %d, api %d; want 1 each", rcv.accepted("www.example.test"), rcv.accepted("api.example.test"))
		}

		// A job held processing by a slow receiver (a new certificate, so
		// that the delivery is not skipped as already done).
		renewed, _ := r.upload("renewed", certstest.Options{DNSNames: []string{"www.example.test"}})
		rcv.setDelay(2 * time.Second)
		slow := r.createJob(jobSpec{name: "slow", certs: []int64{renewed}, resources: []int64{www}})
		r.mustSetStatus(slow, "pending")
		r.wait(slow, 10*time.Second, "processing")

		// A pending worker, for the worker operations.
		later := r.createJob(jobSpec{name: "later", certs: []int64{cert}, resources: []int64{api}, schedule: time.Now().Add(time.Hour)})
		r.mustSetStatus(later, "pending")
		pendingWorker := r.workers(later)[0]
		if pendingWorker.Status != "pending" {
			t.Fatalf("worker of a pending job is %s", pendingWorker.Status)
		}
		doneWorker := r.workers(job)[0]

		for _, tc := range []struct {
			desc  string
			call  func() error
			code  string
			parts []string
		}{
			{desc: "editing a success job", code: "IncorrectStatus", parts: []string{"success"},
				call: func() error { return r.setStatus(job, "editing") }},
			{desc: "pending a success job", code: "IncorrectStatus", parts: []string{"success"},
				call: func() error { return r.setStatus(job, "pending") }},
			{desc: "status success", code: "InvalidParameter", parts: []string{"Status"},
				call: func() error { return r.setStatus(later, "success") }},
			{desc: "delete a processing job", code: "IncorrectStatus", parts: []string{"processing"},
				call: func() error {
					_, err := r.c.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(slow)})
					return err
				}},
			{desc: "delete a worker of a success job", code: "IncorrectStatus", parts: []string{"editing"},
				call: func() error {
					_, err := r.c.DeleteWorkerResource(&cas.DeleteWorkerResourceRequest{JobId: tea.Int64(job), WorkerId: tea.Int64(doneWorker.ID)})
					return err
				}},
			{desc: "delete a worker of a pending job", code: "IncorrectStatus", parts: []string{"editing"},
				call: func() error {
					_, err := r.c.DeleteWorkerResource(&cas.DeleteWorkerResourceRequest{JobId: tea.Int64(later), WorkerId: tea.Int64(pendingWorker.ID)})
					return err
				}},
			{desc: "roll back a pending worker", code: "IncorrectStatus", parts: []string{"pending"},
				call: func() error { return r.requestRollback(later, pendingWorker.ID) }},
			{desc: "worker status success", code: "InvalidParameter", parts: []string{"Status"},
				call: func() error {
					_, err := r.c.UpdateWorkerResourceStatus(&cas.UpdateWorkerResourceStatusRequest{JobId: tea.Int64(job),
						WorkerId: tea.Int64(doneWorker.ID), Status: tea.String("success")})
					return err
				}},
			{desc: "worker of another job", code: "NotFound", parts: []string{"Worker"},
				call: func() error { return r.requestRollback(job, pendingWorker.ID) }},
		} {
			t.Run(tc.desc, func(t *testing.T) {
				wantAPIError(t, tc.call(), tc.code, tc.parts...)
			})
		}

		// Back to editing, a worker can go; deleting the job then works.
		r.mustSetStatus(later, "editing")
		if _, err := r.c.DeleteWorkerResource(&cas.DeleteWorkerResourceRequest{JobId: tea.Int64(later), WorkerId: tea.Int64(pendingWorker.ID)}); err != nil {
			t.Fatalf("delete a worker of an editing job: %v", err)
		}
		if n := len(r.workers(later)); n != 0 {
			t.Fatalf("%d workers left after deleting the only one", n)
		}
		if _, err := r.c.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(later)}); err != nil {
			t.Fatalf("delete an editing job: %v", err)
		}
		r.waitEnd(slow, "success")
		if _, err := r.c.DeleteDeploymentJob(&cas.DeleteDeploymentJobRequest{JobId: tea.Int64(slow)}); err != nil {
			t.Fatalf("delete a finished job: %v", err)
		}
	})
}
