package engine

import (
	"context"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// sweeping is the fake product, cleaning up after jobs.
type sweeping struct {
	*deploytest.Fake
	swept chan deploy.Target
}

func (s *sweeping) Sweep(_ context.Context, t deploy.Target) error {
	s.swept <- t
	return nil
}

// TestSweepAfterJob: once a job ends, the product and credential it
// deployed to are swept, with the credential opened and one of the job's
// resources of that pair.
func TestSweepAfterJob(t *testing.T) {
	r := setup(t)
	prod := &sweeping{Fake: deploytest.NewFake(), swept: make(chan deploy.Target, 10)}
	r.catalog = deploy.NewList(prod)
	access := store.CloudAccess{AccountID: r.account, CloudName: "fake", SecretID: "AK", Config: "{}",
		SecretKeyEnc: r.box.Seal([]byte("sk"), secret.PurposeAccessSecret)}
	if err := r.st.AccessCreate(r.ctx, &access); err != nil {
		t.Fatal(err)
	}
	var rs []store.Resource
	for i, domain := range []string{"a.example.test", "b.example.test", "c.example.test"} {
		res := store.Resource{AccountID: r.account, CloudName: "fake", CloudProduct: "FAKE", Domain: domain, Name: domain, Config: "{}"}
		if i < 2 {
			res.CloudAccessID = access.ID
		}
		if err := r.st.ResourceCreate(r.ctx, &res); err != nil {
			t.Fatal(err)
		}
		rs = append(rs, res)
	}
	job := r.startJob(rs...)
	r.run(Config{Lease: 10 * time.Second})
	r.waitJob(job, store.JobSuccess)
	select {
	case got := <-prod.swept:
		if got.Access == nil || got.Access.SecretKey != "sk" || got.CloudProduct != "FAKE" || got.ResourceID != rs[0].ID {
			t.Errorf("Sweep got %+v, want the first resource with the opened credential", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no sweep within 10s of the job's end")
	}
}
