package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testNotifications(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("a job's end is told once, with its messages", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 2)
		if got := b.run(t, j.ID, store.WorkerSuccess); got != store.JobSuccess {
			t.Fatalf("job ended %s", got)
		}
		evs, err := b.s.JobEventsDue(b.ctx, store.JobEventsDueParams{})
		ok(t, err, "JobEventsDue")
		if len(evs) != 1 || evs[0].Job.ID != j.ID || evs[0].Kind != store.JobEventKindEnd {
			t.Fatalf("JobEventsDue = %+v, want the end of job %d", evs, j.ID)
		}
		p := store.NotificationEmitParams{Kind: evs[0].Kind, JobID: j.ID, Mark: evs[0].Mark, Now: b.now,
			Rows: []store.Notification{{AccountID: b.acct, JobID: j.ID, Event: store.EventJobSuccess, Channel: store.ChannelEmail,
				Target: "ops@example.test", Subject: "s", Body: "{}"}}}
		ok(t, b.s.NotificationEmit(b.ctx, p), "NotificationEmit")
		isErr(t, b.s.NotificationEmit(b.ctx, p), store.ErrConflict, "second NotificationEmit")
		evs, err = b.s.JobEventsDue(b.ctx, store.JobEventsDueParams{})
		ok(t, err, "JobEventsDue after emit")
		equal(t, "events after emit", len(evs), 0)
		list, total, err := b.s.NotificationList(b.ctx, store.NotificationListParams{AccountID: b.acct, JobID: j.ID, Limit: 10})
		ok(t, err, "NotificationList")
		if total != 1 || len(list) != 1 || list[0].Status != store.NotificationPending || list[0].Target != "ops@example.test" {
			t.Fatalf("NotificationList = %+v (total %d)", list, total)
		}
		other, _, err := b.s.NotificationList(b.ctx, store.NotificationListParams{AccountID: b.other, Limit: 10})
		ok(t, err, "NotificationList(other account)")
		equal(t, "other account's notifications", len(other), 0)
	})

	t.Run("claims are exclusive and outcomes conditional on the claim", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		j, _ := b.simpleJob(t, 1)
		b.run(t, j.ID, store.WorkerError)
		ok(t, b.s.NotificationEmit(b.ctx, store.NotificationEmitParams{Kind: store.JobEventKindEnd, JobID: j.ID, Now: b.now,
			Rows: []store.Notification{{AccountID: b.acct, JobID: j.ID, Event: store.EventJobError, Channel: store.ChannelWebhook,
				Target: "https://hooks.example/x", Body: "{}"}}}), "NotificationEmit")
		claim := func(at time.Time) []store.Notification {
			ns, err := b.s.NotificationClaimDue(b.ctx, store.NotificationClaimDueParams{Now: at, LeaseUntil: at.Add(time.Minute), Limit: 10})
			ok(t, err, "NotificationClaimDue")
			return ns
		}
		first := claim(b.now)
		if len(first) != 1 {
			t.Fatalf("claimed %d, want 1", len(first))
		}
		equal(t, "claim while leased", len(claim(b.now)), 0)
		// The lease lapses (the sender crashed): claimed again, with a new token.
		second := claim(b.now.Add(2 * time.Minute))
		if len(second) != 1 || second[0].ClaimToken == first[0].ClaimToken {
			t.Fatalf("reclaim = %+v", second)
		}
		err := b.s.NotificationFinish(b.ctx, store.NotificationFinishParams{ID: first[0].ID, ClaimToken: first[0].ClaimToken,
			Status: store.NotificationSent, Attempts: 1, Sent: b.now})
		if !errors.Is(err, store.ErrConflict) {
			t.Fatalf("finish with a stale claim: %v, want ErrConflict", err)
		}
		retry := b.now.Add(3 * time.Minute)
		ok(t, b.s.NotificationFinish(b.ctx, store.NotificationFinishParams{ID: second[0].ID, ClaimToken: second[0].ClaimToken,
			Status: store.NotificationPending, Attempts: 1, NextAttempt: retry, LastError: "refused"}), "NotificationFinish(retry)")
		next, found, err := b.s.NotificationNextDue(b.ctx)
		ok(t, err, "NotificationNextDue")
		if !found {
			t.Fatal("NotificationNextDue found nothing")
		}
		sameMS(t, "next due", next, retry)
		third := claim(retry)
		if len(third) != 1 || third[0].Attempts != 1 || third[0].LastError != "refused" {
			t.Fatalf("retry claim = %+v", third)
		}
		ok(t, b.s.NotificationFinish(b.ctx, store.NotificationFinishParams{ID: third[0].ID, ClaimToken: third[0].ClaimToken,
			Status: store.NotificationSent, Attempts: 2, Sent: retry}), "NotificationFinish(sent)")
		equal(t, "claim after sent", len(claim(retry.Add(time.Hour))), 0)
	})

	t.Run("an expiry threshold is told once", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "soon", func(c *store.Certificate) { c.NotAfter = b.now.Add(5 * 24 * time.Hour) })
		cs, err := b.s.CertificateScan(b.ctx, store.CertificateScanParams{NotAfterFrom: b.now, NotAfterTo: b.now.Add(30 * 24 * time.Hour)})
		ok(t, err, "CertificateScan")
		if len(idsOf(cs, certID)) != 1 || cs[0].ID != c.ID {
			t.Fatalf("CertificateScan = %v, want [%d]", idsOf(cs, certID), c.ID)
		}
		p := store.NotificationEmitParams{Kind: store.EmitKindExpiry, CertID: c.ID, ThresholdDays: 7, AlsoThresholds: []int{30}, Now: b.now}
		ok(t, b.s.NotificationEmit(b.ctx, p), "NotificationEmit(7)")
		isErr(t, b.s.NotificationEmit(b.ctx, p), store.ErrConflict, "NotificationEmit(7) again")
		p.ThresholdDays, p.AlsoThresholds = 30, nil
		isErr(t, b.s.NotificationEmit(b.ctx, p), store.ErrConflict, "NotificationEmit(30) after 7")
		p.ThresholdDays = 1
		ok(t, b.s.NotificationEmit(b.ctx, p), "NotificationEmit(1)")
	})
}

func testDeployedBy(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("CertificateDeployedBy lists the account's jobs that deployed the certificate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "deployed", nil)
		other := b.cert(t, b.acct, "other", nil)
		rs := b.resources(t, b.acct, "r", 3)
		done, _ := b.job(t, b.acct, c.ID, rs[0], rs[1])
		if got := b.run(t, done.ID, store.WorkerSuccess); got != store.JobSuccess {
			t.Fatalf("job ended %s", got)
		}
		failed, _ := b.job(t, b.acct, c.ID, rs[2])
		b.run(t, failed.ID, store.WorkerError)
		elsewhere, _ := b.job(t, b.acct, other.ID, rs[2])
		b.run(t, elsewhere.ID, store.WorkerSuccess)
		b.job(t, b.acct, c.ID, rs[2]) // editing: never ran

		jobs, err := b.s.CertificateDeployedBy(b.ctx, b.acct, c.ID)
		ok(t, err, "CertificateDeployedBy")
		equal(t, "jobs that deployed it", idsOf(jobs, jobID), []int64{done.ID})
		jobs, err = b.s.CertificateDeployedBy(b.ctx, b.other, c.ID)
		ok(t, err, "CertificateDeployedBy(other account)")
		equal(t, "another account's view", len(jobs), 0)
	})
}
