package slb

import (
	"encoding/json"
	"fmt"
	"maps"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/aliyunfake"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

const (
	akID     = "LTAI5tCertfleetTest01"
	akSecret = "fake-secret-0123456789abcdef"
	region   = "cn-shanghai"
)

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func hub() *aliyun.Hub { return aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond}) }

// newLB adds a load balancer whose HTTPS listener on 443 serves a
// certificate someone else uploaded, with an SNI extension for
// other.example.com, and returns its id.
func newLB(t *testing.T, f *aliyunfake.Fake) string {
	lb := fmt.Sprintf("lb-%d", ids.Add(1))
	def := f.AddSLBCert(region, "theirs-default", deploytest.Bundle(t, "www.example.com").FullChainPEM)
	f.AddLoadBalancer(region, lb, def, 443)
	f.AddDomainExtension(lb, 443, "other.example.com", f.AddSLBCert(region, "theirs-other", deploytest.Bundle(t, "other.example.com").FullChainPEM))
	return lb
}

func target(f *aliyunfake.Fake, lb, domain string, def bool, access *deploy.Access) deploy.Target {
	cfg, _ := json.Marshal(map[string]any{"DefaultResource": def})
	return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "SLB", Domain: domain,
		RegionID: region, InstanceID: lb, ListenerPort: "443", Config: cfg, Access: access}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	f.AddKey("LTAI5tDenied", "denied-secret-0123456789")
	f.Deny("LTAI5tDenied", "UploadServerCertificate")
	stall := aliyunfake.New(akID, akSecret)
	t.Cleanup(stall.Close)
	for _, def := range []bool{true, false} {
		t.Run(fmt.Sprintf("DefaultResource=%v", def), func(t *testing.T) {
			access := f.Access(7, akID, akSecret, fast)
			deploytest.Run(t, deploytest.Harness{
				Deployer: New(hub()),
				Target:   func(t *testing.T) deploy.Target { return target(f, newLB(t, f), "www.example.com", def, access) },
				Served: func(t *testing.T, tgt deploy.Target) []byte {
					st := f.SLB(tgt.InstanceID, 443)
					id := st.ServerCert
					if !def {
						id = st.Extensions[tgt.Domain]
					}
					if s := f.SLBCertSha2(id); s != "" {
						return []byte(s)
					}
					return nil
				},
				DeployChecksFirst: true,
				BadConfigs: []deploytest.BadConfig{
					{Desc: "DefaultResource not a boolean", Config: json.RawMessage(`{"DefaultResource": "maybe"}`)},
					{Desc: "an Endpoint with a path", Config: json.RawMessage(`{"Endpoint": "https://slb.example.com/api"}`)},
				},
				Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
					reached := stall.Stall("DescribeServerCertificates")
					return target(stall, newLB(t, stall), "www.example.com", def, stall.Access(8, akID, akSecret, fast)), reached
				},
				Failing: []deploytest.Failing{
					{Desc: "a load balancer the account does not have", Target: func(t *testing.T) deploy.Target {
						return target(f, "lb-missing", "www.example.com", def, access)
					}},
					{Desc: "a key RAM denies UploadServerCertificate", Target: func(t *testing.T) deploy.Target {
						return target(f, newLB(t, f), "www.example.com", def, f.Access(9, "LTAI5tDenied", "denied-secret-0123456789", fast))
					}},
				},
			})
		})
	}
}

// TestSNISafety: an extension deployment touches only its domain's
// extension; a default one only the default certificate.
func TestSNISafety(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	d := New(hub())
	lb := newLB(t, f)
	f.AddDomainExtension(lb, 443, "third.example.com", f.AddSLBCert(region, "theirs-third", deploytest.Bundle(t, "third.example.com").FullChainPEM))
	before := f.SLB(lb, 443)
	access := f.Access(7, akID, akSecret, fast)
	b := deploytest.Bundle(t, "other.example.com")
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: target(f, lb, "other.example.com", false, access)}); err != nil {
		t.Fatal(err)
	}
	after := f.SLB(lb, 443)
	if after.ServerCert != before.ServerCert || after.Extensions["third.example.com"] != before.Extensions["third.example.com"] || len(after.Extensions) != 2 {
		t.Errorf("an SNI deployment changed other bindings: before %+v, after %+v", before, after)
	}
	if f.SLBCertSha2(after.Extensions["other.example.com"]) != b.Sha2 {
		t.Errorf("other.example.com's extension serves %s, want the new certificate", after.Extensions["other.example.com"])
	}
	b2 := deploytest.Bundle(t, "www.example.com")
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b2, Target: target(f, lb, "www.example.com", true, access)}); err != nil {
		t.Fatal(err)
	}
	final := f.SLB(lb, 443)
	if !maps.Equal(final.Extensions, after.Extensions) || f.SLBCertSha2(final.ServerCert) != b2.Sha2 {
		t.Errorf("a default deployment: before %+v, after %+v", after, final)
	}
}

// TestSweep keeps what bindings use and the newest idle upload.
func TestSweep(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	d := New(hub())
	lb := newLB(t, f)
	access := f.Access(7, akID, akSecret, fast)
	tgt := target(f, lb, "www.example.com", true, access)
	var uploaded []string
	for range 4 {
		if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: deploytest.Bundle(t, "www.example.com"), Target: tgt}); err != nil {
			t.Fatal(err)
		}
		uploaded = append(uploaded, f.SLB(lb, 443).ServerCert)
	}
	if err := d.Sweep(t.Context(), tgt); err != nil {
		t.Fatal(err)
	}
	certs := f.SLBCerts()
	for i, id := range uploaded {
		_, ok := certs[id]
		if want := i >= 2; ok != want {
			t.Errorf("upload %d (%s): kept %v, want %v (the bound one and the newest idle one stay)", i, id, ok, want)
		}
	}
	// Certificates someone else uploaded are never deleted, used or not.
	n := 0
	for _, c := range certs {
		if c.Name[:6] == "theirs" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("%d of the account's own certificates left, want 2", n)
	}
}
