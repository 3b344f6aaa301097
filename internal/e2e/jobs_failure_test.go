package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestJobWorkerFailure checks that a permanent failure is not retried, that
// a transient one is retried --retry-attempts times, and that rolling back a
// failed worker that never changed its resource leaves what the resource
// serves alone.
func TestJobWorkerFailure(t *testing.T) {
	t.Parallel()
	const attempts = 3
	forEachEngine(t, func(t *testing.T, engine string) {
		r := newJobRig(t, engine, "--retry-base", "100ms", "--retry-attempts", fmt.Sprint(attempts), "--lease", "3s")
		rcv := newCountingReceiver(t)
		old, _ := r.upload("old", certstest.Options{DNSNames: []string{"*.example.test"}})
		cert, _ := r.upload("new", certstest.Options{DNSNames: []string{"*.example.test"}})
		for i, tc := range []struct {
			desc         string
			status       int
			wantAttempts int
		}{
			{desc: "404 is permanent", status: 404, wantAttempts: 1},
			{desc: "503 until attempts run out", status: 503, wantAttempts: attempts},
		} {
			t.Run(tc.desc, func(t *testing.T) {
				r := r.with(t)
				good, bad := fmt.Sprintf("good%d.example.test", i), fmt.Sprintf("bad%d.example.test", i)
				goodRes, badRes := r.webhook(rcv.URL, good), r.webhook(rcv.URL, bad)
				// Both resources first get the old certificate.
				r.run(r.createJob(jobSpec{name: "old", certs: []int64{old}, resources: []int64{goodRes, badRes}}), "success")

				rcv.answer(bad, tc.status)
				job := r.createJob(jobSpec{name: "new", certs: []int64{cert}, resources: []int64{goodRes, badRes}})
				r.run(job, "error")
				w := r.worker(job, badRes)
				if w.Status != "error" || w.Attempts != tc.wantAttempts || !strings.Contains(w.ErrorMessage, fmt.Sprint(tc.status)) {
					t.Fatalf("failing worker: status %s, attempts %d, error %q; want error after %d attempts, mentioning %d",
						w.Status, w.Attempts, w.ErrorMessage, tc.wantAttempts, tc.status)
				}
				if n := rcv.count(job, "deploy", bad); n != tc.wantAttempts {
					t.Fatalf("the receiver saw %d requests for %s, want %d", n, bad, tc.wantAttempts)
				}
				if w := r.worker(job, goodRes); w.Status != "success" {
					t.Fatalf("the other worker is %s (%s)", w.Status, w.ErrorMessage)
				}
				cs := r.counts(job)
				if tea.Int32Value(cs.FailedCount) != 1 || tea.Int32Value(cs.SuccessCount) != 1 || tea.Int32Value(cs.WorkerCount) != 2 {
					t.Fatalf("counts: %v", cs)
				}
				if got := r.servedCert(badRes); got != old {
					t.Fatalf("the failed resource serves certificate %d, want the old %d", got, old)
				}
				if got := r.servedCert(goodRes); got != cert {
					t.Fatalf("the other resource serves certificate %d, want %d", got, cert)
				}

				// The failed worker changed nothing: its rollback must not forget the old certificate.
				rcv.answer(bad, 0)
				r.rollback(job, badRes, "rollback_success")
				if got := r.servedCert(badRes); got != old {
					t.Fatalf("after rolling back the failed worker, the resource serves certificate %d, want the old %d", got, old)
				}
				cs = r.counts(job)
				if tea.Int32Value(cs.FailedCount) != 0 || tea.Int32Value(cs.RollbackSuccessCount) != 1 {
					t.Fatalf("counts after the rollback: %v", cs)
				}
				if st := r.status(job); st != "error" {
					t.Fatalf("job is %s after the rollback, want error", st)
				}
			})
		}
	})
}
