package deploytest_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

var resourceIDs atomic.Int64

func fakeTarget() deploy.Target {
	return deploy.Target{ResourceID: resourceIDs.Add(1), CloudName: "fake", CloudProduct: "FAKE", Domain: "www.example.test",
		Config: json.RawMessage(`{"Label":"conformance"}`)}
}

// TestFakeConformance: the Fake engine tests rely on keeps the contract it
// stands in for.
func TestFakeConformance(t *testing.T) {
	t.Parallel()
	f := deploytest.NewFake()
	deploytest.Run(t, deploytest.Harness{
		Deployer: f,
		Target:   func(*testing.T) deploy.Target { return fakeTarget() },
		Served: func(_ *testing.T, tgt deploy.Target) []byte {
			b, ok := f.Serving(tgt.ResourceID)
			if !ok {
				return nil
			}
			return []byte(b.Sha2)
		},
		Effects: func(_ *testing.T, tgt deploy.Target) int { return len(f.Deliveries(tgt.ResourceID)) },
		BadConfigs: []deploytest.BadConfig{
			{Desc: "an unknown key", Config: json.RawMessage(`{"Label":"x","Lable":"y"}`)},
			{Desc: "not an object", Config: json.RawMessage(`["Label"]`)},
		},
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			tgt := fakeTarget()
			reached, release := f.Hold(tgt.ResourceID)
			t.Cleanup(release)
			return tgt, reached
		},
		Failing: []deploytest.Failing{
			{Desc: "an injected permanent failure", Target: func(*testing.T) deploy.Target {
				tgt := fakeTarget()
				f.Fail(tgt.ResourceID, 1000, true)
				return tgt
			}},
			{Desc: "an injected transient failure", Target: func(*testing.T) deploy.Target {
				tgt := fakeTarget()
				f.Fail(tgt.ResourceID, 1000, false)
				return tgt
			}},
		},
	})
}

func TestFakeFails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc      string
		permanent bool
	}{
		{desc: "transiently", permanent: false},
		{desc: "permanently", permanent: true},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := deploytest.NewFake()
			tgt := fakeTarget()
			f.Fail(tgt.ResourceID, 2, tc.permanent)
			req := deploy.Request{JobID: 1, WorkerID: 2, Target: tgt, Bundle: deploytest.Bundle(t, tgt.Domain)}
			for i := range 2 {
				_, err := f.Deploy(context.Background(), req)
				if err == nil || deploy.IsPermanent(err) != tc.permanent {
					t.Fatalf("attempt %d: got %v, want an error with permanent=%v", i+1, err, tc.permanent)
				}
				if _, ok := f.Serving(tgt.ResourceID); ok {
					t.Fatalf("attempt %d failed but changed the target", i+1)
				}
			}
			if _, err := f.Deploy(context.Background(), req); err != nil {
				t.Fatalf("third attempt: %v", err)
			}
			ds := f.Deliveries(tgt.ResourceID)
			if len(ds) != 3 || ds[0].Err == nil || ds[1].Err == nil || ds[2].Err != nil || ds[2].CertID != 42 || ds[2].Action != "deploy" {
				t.Fatalf("deliveries = %+v, want two failures then a success of certificate 42", ds)
			}
			if other := fakeTarget(); true {
				if _, err := f.Deploy(context.Background(), deploy.Request{Target: other, Bundle: req.Bundle}); err != nil {
					t.Fatalf("another resource: %v", err)
				}
			}
		})
	}
}

// TestFakeConcurrent: run with -race.
func TestFakeConcurrent(t *testing.T) {
	t.Parallel()
	f := deploytest.NewFake()
	f.Fail(0, 10, false)
	b := deploytest.Bundle(t, "www.example.test")
	var wg sync.WaitGroup
	var failed atomic.Int64
	targets := make([]deploy.Target, 8)
	for i := range targets {
		targets[i] = fakeTarget()
	}
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := deploy.Request{Target: targets[i%len(targets)], Bundle: b}
			if _, err := f.Deploy(context.Background(), req); err != nil {
				failed.Add(1)
			}
			f.AlreadyDeployed(context.Background(), req)
		}()
	}
	wg.Wait()
	if failed.Load() != 10 {
		t.Fatalf("%d deployments failed, want the 10 injected failures", failed.Load())
	}
	total := 0
	for _, tgt := range targets {
		ds := f.Deliveries(tgt.ResourceID)
		total += len(ds)
		succeeded := slices.ContainsFunc(ds, func(d deploytest.Delivery) bool { return d.Err == nil })
		if _, ok := f.Serving(tgt.ResourceID); ok != succeeded {
			t.Errorf("resource %d: holding a bundle is %v, a deployment succeeded is %v", tgt.ResourceID, ok, succeeded)
		}
	}
	if total != 40 {
		t.Fatalf("%d deliveries recorded, want 40", total)
	}
}
