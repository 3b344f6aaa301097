package engine

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/store"
)

// TestEngineRetries: with a deployer told to fail, the engine retries
// transient failures until one succeeds or the attempts run out, and stops
// at a permanent one.
func TestEngineRetries(t *testing.T) {
	for _, tc := range []struct {
		desc       string
		fails      int
		permanent  bool
		want       store.JobStatus
		deliveries int
	}{
		{desc: "two transient failures, then success", fails: 2, want: store.JobSuccess, deliveries: 3},
		{desc: "a permanent failure", fails: 1, permanent: true, want: store.JobError, deliveries: 1},
		{desc: "transient failures past the attempts", fails: 5, want: store.JobError, deliveries: 3},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := setup(t)
			fake, res := r.fakeResource()
			fake.Fail(res.ID, tc.fails, tc.permanent)
			job := r.startJob(res)
			r.run(Config{Attempts: 3, RetryBase: 10 * time.Millisecond, RetryMax: 20 * time.Millisecond, Lease: 10 * time.Second})
			r.waitJob(job, tc.want)

			ds := fake.Deliveries(res.ID)
			if len(ds) != tc.deliveries {
				t.Fatalf("the deployer saw %d deliveries, want %d: %+v", len(ds), tc.deliveries, ds)
			}
			b, ok := fake.Serving(res.ID)
			switch {
			case tc.want == store.JobSuccess && (!ok || b.CertID != r.cert.ID):
				t.Errorf("after success the resource holds certificate %d (%v), want %d", b.CertID, ok, r.cert.ID)
			case tc.want != store.JobSuccess && ok:
				t.Errorf("after failing the resource holds certificate %d, want nothing", b.CertID)
			}
		})
	}
}

// TestOutcomeWrittenAgain: an outcome batch that fails as a whole is written
// again, so the deployment is recorded once instead of running again after
// its lease lapses.
func TestOutcomeWrittenAgain(t *testing.T) {
	r := setup(t)
	fake, res := r.fakeResource()
	r.st.failFinishes.Store(2)
	job := r.startJob(res)
	r.run(Config{Attempts: 3, Lease: time.Minute})
	r.waitJob(job, store.JobSuccess)
	if got := r.st.failFinishes.Load(); got >= 0 {
		t.Fatalf("failFinishes = %d: the injected failures were not all met", got)
	}
	if ds := fake.Deliveries(res.ID); len(ds) != 1 {
		t.Fatalf("the deployer saw %d deliveries, want 1", len(ds))
	}
}

// fakeResource makes the rig's engine deploy through a fake deployer and
// creates one resource of it.
func (r *rig) fakeResource() (*deploytest.Fake, store.Resource) {
	r.t.Helper()
	fake := deploytest.NewFake()
	r.catalog = deploy.NewList(fake)
	res := store.Resource{AccountID: r.account, CloudName: "fake", CloudProduct: "FAKE", Domain: "a.example.test", Name: "a", Config: "{}"}
	if err := r.st.ResourceCreate(r.ctx, &res); err != nil {
		r.t.Fatal(err)
	}
	return fake, res
}
