package e2e

import (
	"os"
	"testing"

	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestJobFileLifecycle deploys two certificates in turn to a FILE resource,
// then rolls the second deployment back.
func TestJobFileLifecycle(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := newFileRoot(t)
		r := newJobRig(t, engine, append(f.args(), "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")...)
		first, chFirst := r.upload("first", certstest.Options{DNSNames: []string{"www.example.test"}})
		second, chSecond := r.upload("second", certstest.Options{DNSNames: []string{"www.example.test"}})
		res := r.fileResource(f, "www", "www.example.test")
		files := f.files("www")

		job1 := r.createJob(jobSpec{name: "first", certs: []int64{first}, resources: []int64{res}})
		if st := r.status(job1); st != "editing" {
			t.Fatalf("new job is %s, want editing", st)
		}
		r.mustSetStatus(job1, "pending")
		r.waitEnd(job1, "success")
		files.holds(t, chFirst)
		if !f.reloaded() {
			t.Fatal("the reload command did not run after the first deployment")
		}
		if got := r.servedCert(res); got != first {
			t.Fatalf("resource serves certificate %d after job 1, want %d", got, first)
		}

		job2 := r.createJob(jobSpec{name: "second", certs: []int64{second}, resources: []int64{res}})
		r.run(job2, "success")
		files.holds(t, chSecond)
		if !f.reloaded() {
			t.Fatal("the reload command did not run after the second deployment")
		}
		if got := r.servedCert(res); got != second {
			t.Fatalf("resource serves certificate %d after job 2, want %d", got, second)
		}
		if w := r.worker(job2, res); w.ResourceCertID != first || w.CertID != second {
			t.Fatalf("job 2 worker: CertId %d ResourceCertId %d, want %d and %d", w.CertID, w.ResourceCertID, second, first)
		}

		r.rollback(job2, res, "rollback_success")
		files.holds(t, chFirst)
		if !f.reloaded() {
			t.Fatal("the reload command did not run after the rollback")
		}
		if d := r.describe(job2); tea.Int32Value(d.Rollback) != 1 || tea.StringValue(d.Status) != "success" {
			t.Fatalf("job 2 after rollback: Rollback %d, Status %s; want 1, success", tea.Int32Value(d.Rollback), tea.StringValue(d.Status))
		}
		if d := r.describe(job1); tea.Int32Value(d.Rollback) != 0 {
			t.Fatalf("job 1 Rollback = %d, want 0", tea.Int32Value(d.Rollback))
		}
		cs := r.counts(job2)
		if tea.Int32Value(cs.RollbackCount) != 1 || tea.Int32Value(cs.RollbackSuccessCount) != 1 || tea.Int32Value(cs.RollbackFailedCount) != 0 ||
			tea.Int32Value(cs.FailedCount) != 0 {
			t.Fatalf("job 2 counts: %v", cs)
		}
		if got := r.servedCert(res); got != first {
			t.Fatalf("resource serves certificate %d after the rollback, want %d", got, first)
		}
		// Through the SDK's own types this time.
		ws := r.srv.workers(r.c, job2)
		if len(ws) != 1 || tea.Int64Value(ws[0].ResourceCertId) != first || tea.StringValue(ws[0].Status) != "rollback_success" {
			t.Fatalf("job 2 workers after the rollback: %v; want one rollback_success with ResourceCertId %d", ws, first)
		}
	})
}

// TestJobFileIdempotent deploys to FILE resources that already hold the
// certificate: nothing is rewritten, and a rollback leaves the files alone.
func TestJobFileIdempotent(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		f := newFileRoot(t)
		r := newJobRig(t, engine, append(f.args(), "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s")...)
		cert, ch := r.upload("www", certstest.Options{DNSNames: []string{"*.example.test"}})
		for _, tc := range []struct {
			desc string
			name string // of the resource and its files
			// prepare puts ch in place on the resource's files.
			prepare func(r *jobRig, res int64, files fileSet)
		}{
			{desc: "deployed before by certfleet", name: "again", prepare: func(r *jobRig, res int64, files fileSet) {
				r.run(r.createJob(jobSpec{name: "earlier", certs: []int64{cert}, resources: []int64{res}}), "success")
			}},
			{desc: "written by hand", name: "byhand", prepare: func(r *jobRig, res int64, files fileSet) {
				for path, content := range map[string]string{files.cert: ch.CertPEM, files.key: ch.KeyPEM, files.chain: ch.IntermediatePEM} {
					mode := os.FileMode(0o644)
					if path == files.key {
						mode = 0o600
					}
					if err := os.WriteFile(path, []byte(content), mode); err != nil {
						r.t.Fatal(err)
					}
				}
			}},
		} {
			t.Run(tc.desc, func(t *testing.T) {
				r := r.with(t)
				res := r.fileResource(f, tc.name, tc.name+".example.test")
				files := f.files(tc.name)
				tc.prepare(r, res, files)
				files.holds(t, ch)
				mtimes := files.age(t)
				f.reloaded()

				job := r.createJob(jobSpec{name: "same", certs: []int64{cert}, resources: []int64{res}})
				r.run(job, "success")
				files.holds(t, ch)
				files.unchangedSince(t, mtimes)
				if got := r.servedCert(res); got != cert {
					t.Fatalf("resource serves certificate %d, want %d", got, cert)
				}

				r.rollback(job, res, "rollback_success")
				files.holds(t, ch)
				files.unchangedSince(t, mtimes)
				if got := r.servedCert(res); got != cert {
					t.Fatalf("after rolling back a deployment that changed nothing, the resource serves certificate %d, want %d", got, cert)
				}
			})
		}
	})
}
