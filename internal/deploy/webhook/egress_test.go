package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// TestEgressPolicy: a receiver on loopback is refused to an account the
// policy keeps off it (permanently, naming the policy), and delivered to
// for the root account.
func TestEgressPolicy(t *testing.T) {
	t.Parallel()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { hits.Add(1) }))
	defer srv.Close()
	accounts := func(_ context.Context, id int64) (egress.Scope, error) { return egress.Scope{Root: id == 1}, nil }
	d := New(Options{Egress: egress.New(egress.Policy{}, accounts, nil)})
	req := func(account int64) deploy.Request {
		return deploy.Request{JobID: 1, WorkerID: 1, Bundle: deploy.Bundle{CertID: 1, CertPEM: "cert", KeyPEM: "key"},
			Target: deploy.Target{AccountID: account, ResourceID: 1, Config: []byte(`{"Url":"` + srv.URL + `/hook"}`)}}
	}
	_, err := d.Deploy(t.Context(), req(7))
	if !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "refused by the egress policy") || hits.Load() != 0 {
		t.Fatalf("tenant: %v (%d deliveries), want a permanent egress refusal and no delivery", err, hits.Load())
	}
	if _, err := d.Deploy(t.Context(), req(1)); err != nil || hits.Load() != 1 {
		t.Fatalf("root: %v (%d deliveries), want one delivery", err, hits.Load())
	}
}
