package tencent

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/deploy/tencent/tcfake"
)

const (
	testID     = "AKIDcertfleettest0001"
	testSecret = "certfleet-tencent-test-secret-key-0001"
)

var seq atomic.Int64

func access(f *tcfake.Server, extra map[string]any) *deploy.Access {
	cfg := map[string]any{"Endpoints": map[string]string{"*": f.URL}, "Regions": []string{"ap-guangzhou", "ap-shanghai"}, "MaxQPS": 1000}
	for k, v := range extra {
		cfg[k] = v
	}
	b, _ := json.Marshal(cfg)
	return &deploy.Access{ID: 3, CloudName: CloudName, SecretID: testID, SecretKey: testSecret, Config: b}
}

func tgt(product string, a *deploy.Access, domain string, cfg map[string]any) deploy.Target {
	if cfg == nil {
		cfg = map[string]any{}
	}
	b, _ := json.Marshal(cfg)
	return deploy.Target{AccountID: 1, ResourceID: 100 + seq.Add(1), CloudName: CloudName, CloudProduct: product, Domain: domain, Config: b, Access: a}
}

func name(prefix string) string {
	return prefix + "-" + time.Now().Format("150405") + "-" + string(rune('a'+seq.Add(1)%26)) + ".example.com"
}

func fastOpts() Options { return Options{TaskPoll: 10 * time.Millisecond} }

func TestSchemas(t *testing.T) {
	deploytest.CheckSchema(t, CDNDescription.Config, CDNConfig{})
	deploytest.CheckSchema(t, CLBDescription.Config, CLBConfig{})
	deploytest.CheckSchema(t, TEODescription.Config, TEOConfig{})
	deploytest.CheckSchema(t, accessFields, AccessConfig{})
}

func failingWrongKey(f *tcfake.Server, product string, cfg map[string]any, domain string) deploytest.Failing {
	return deploytest.Failing{Desc: "a wrong SecretKey (AuthFailure.SignatureFailure)", Target: func(t *testing.T) deploy.Target {
		a := access(f, nil)
		a.SecretKey = "wrong-secret-key-that-must-not-leak-0001"
		return tgt(product, a, domain, cfg)
	}}
}

func TestCDNConformance(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewCDN(fastOpts()),
		Target: func(t *testing.T) deploy.Target {
			d := name("cdn")
			f.AddCDNDomain(d)
			return tgt("TencentCDN", a, d, nil)
		},
		Served: func(t *testing.T, x deploy.Target) []byte {
			st := f.CDN(x.Domain)
			if st.Switch != "on" {
				return nil
			}
			return []byte(f.Sha(st.CertID))
		},
		Effects:           func(t *testing.T, x deploy.Target) int { return f.Writes("cdn:" + x.Domain) },
		DeployChecksFirst: true,
		BadConfigs: []deploytest.BadConfig{
			{Desc: "a negative KeepPrevious", Config: json.RawMessage(`{"KeepPrevious":-1}`)},
			{Desc: "an unknown key", Config: json.RawMessage(`{"Domain":"x"}`)},
		},
		Failing: []deploytest.Failing{
			failingWrongKey(f, "TencentCDN", nil, "www.example.com"),
			{Desc: "a domain the account does not have", Target: func(t *testing.T) deploy.Target { return tgt("TencentCDN", a, "nope.example.com", nil) }},
		},
	})
}

func TestCLBDefaultConformance(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewCLB(fastOpts()),
		Target: func(t *testing.T) deploy.Target {
			d := name("clb")
			old := f.Upload(deploytest.Bundle(t, d).CertPEM, "users-own")
			lb := "lb-" + strings.Split(d, ".")[0]
			l := f.AddListener("ap-guangzhou", lb, 443, old)
			return tgt("CLB", a, d, map[string]any{"RegionId": "ap-guangzhou", "LoadBalancerId": lb, "ListenerId": l})
		},
		Served: func(t *testing.T, x deploy.Target) []byte {
			c := clbConfigOf(x)
			return []byte(f.Sha(f.Listener(c.ListenerId).CertID))
		},
		Effects: func(t *testing.T, x deploy.Target) int { return f.Writes("clb:" + clbConfigOf(x).ListenerId) },
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no ListenerId", Config: json.RawMessage(`{"RegionId":"ap-guangzhou","LoadBalancerId":"lb-1"}`)},
			{Desc: "DefaultResource not a boolean", Config: json.RawMessage(`{"RegionId":"ap-guangzhou","LoadBalancerId":"lb-1","ListenerId":"lbl-1","DefaultResource":"maybe"}`)},
		},
		Failing: []deploytest.Failing{
			failingWrongKey(f, "CLB", map[string]any{"RegionId": "ap-guangzhou", "LoadBalancerId": "lb-x", "ListenerId": "lbl-x"}, "www.example.com"),
			{Desc: "a listener in another region", Target: func(t *testing.T) deploy.Target {
				return tgt("CLB", a, "www.example.com", map[string]any{"RegionId": "ap-beijing", "LoadBalancerId": "lb-x", "ListenerId": "lbl-x"})
			}},
		},
	})
}

func TestCLBSNIConformance(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	f.SetTaskRunning(2) // every change is seen running twice first
	a := access(f, nil)
	others := map[string]string{}
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewCLB(fastOpts()),
		Target: func(t *testing.T) deploy.Target {
			d := name("sni")
			old := f.Upload(deploytest.Bundle(t, d).CertPEM, "users-own")
			other := f.Upload(deploytest.Bundle(t, "api.example.com").CertPEM, "users-api")
			lb := "lb-" + strings.Split(d, ".")[0]
			l := f.AddListener("ap-shanghai", lb, 443, old, d, "api.example.com")
			// api.example.com has its own certificate.
			if err := setDomain(f, a, lb, l, "api.example.com", other); err != nil {
				t.Fatal(err)
			}
			others[l] = other
			return tgt("CLB", a, d, map[string]any{"RegionId": "ap-shanghai", "LoadBalancerId": lb, "ListenerId": l, "DefaultResource": false})
		},
		Served: func(t *testing.T, x deploy.Target) []byte {
			c := clbConfigOf(x)
			l := f.Listener(c.ListenerId)
			if l.Domains["api.example.com"] != others[c.ListenerId] {
				t.Errorf("listener %s: api.example.com's certificate changed", c.ListenerId)
			}
			return []byte(f.Sha(l.Domains[x.Domain]))
		},
		Effects: func(t *testing.T, x deploy.Target) int {
			return f.Writes("clb:" + clbConfigOf(x).ListenerId + "/" + x.Domain)
		},
		DeployChecksFirst: true,
	})
}

// setDomain binds a certificate to an SNI domain through the deployer's own
// session, as a user's console would.
func setDomain(f *tcfake.Server, a *deploy.Access, lb, l, domain, cert string) error {
	d := NewCLB(fastOpts())
	x := tgt("CLB", a, domain, map[string]any{"RegionId": "ap-shanghai", "LoadBalancerId": lb, "ListenerId": l, "DefaultResource": false})
	s, err := d.open(x)
	if err != nil {
		return err
	}
	return clbProduct{}.write(context.Background(), s, x, binding{On: true, CertID: cert})
}

func TestTEOConformance(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewTEO(fastOpts()),
		Target: func(t *testing.T) deploy.Target {
			d := name("teo")
			f.AddTEODomain("zone-1", d)
			return tgt("TEO", a, d, map[string]any{"ZoneId": "zone-1"})
		},
		Served: func(t *testing.T, x deploy.Target) []byte {
			st := f.TEO("zone-1", x.Domain)
			if st.Mode != "sslcert" {
				return nil
			}
			return []byte(f.Sha(st.CertIDs[0]))
		},
		Effects:           func(t *testing.T, x deploy.Target) int { return f.Writes("teo:zone-1/" + x.Domain) },
		DeployChecksFirst: true,
		BadConfigs:        []deploytest.BadConfig{{Desc: "no ZoneId", Config: json.RawMessage(`{}`)}},
		Failing: []deploytest.Failing{
			failingWrongKey(f, "TEO", map[string]any{"ZoneId": "zone-1"}, "www.example.com"),
			{Desc: "an unknown zone", Target: func(t *testing.T) deploy.Target {
				return tgt("TEO", a, "x.example.com", map[string]any{"ZoneId": "zone-none"})
			}},
		},
	})
}

// TestUploadOnce: one fingerprint to three products, and again from a
// fresh deployer, uploads once.
func TestUploadOnce(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	ctx := context.Background()
	b := deploytest.Bundle(t, "www.example.com")
	f.AddCDNDomain("www.example.com")
	f.AddTEODomain("zone-1", "www.example.com")
	old := f.Upload(deploytest.Bundle(t, "www.example.com").CertPEM, "")
	l := f.AddListener("ap-guangzhou", "lb-1", 443, old)
	reqs := []struct {
		d *Deployer
		x deploy.Target
	}{
		{NewCDN(fastOpts()), tgt("TencentCDN", a, "www.example.com", nil)},
		{NewTEO(fastOpts()), tgt("TEO", a, "www.example.com", map[string]any{"ZoneId": "zone-1"})},
		{NewCLB(fastOpts()), tgt("CLB", a, "www.example.com", map[string]any{"RegionId": "ap-guangzhou", "LoadBalancerId": "lb-1", "ListenerId": l})},
	}
	for _, r := range reqs {
		if _, err := r.d.Deploy(ctx, deploy.Request{Target: r.x, Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Calls("UploadCertificate"); n != 1 {
		t.Errorf("UploadCertificate called %d times, want 1", n)
	}
	n := 0
	for _, c := range f.Certs() {
		if c.Sha == b.Sha2 {
			n++
			if c.Alias != aliasOf(b.Sha2) {
				t.Errorf("the upload's Alias is %q, want %q", c.Alias, aliasOf(b.Sha2))
			}
		}
	}
	if n != 1 {
		t.Errorf("SSL holds %d copies of the bundle, want 1", n)
	}
}

// TestErrors: throttling and internal errors are transient, a bad
// signature permanent; each quotes the code and the request ID.
func TestErrors(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	ctx := context.Background()
	f.AddCDNDomain("www.example.com")
	x := tgt("TencentCDN", a, "www.example.com", nil)
	b := deploytest.Bundle(t, "www.example.com")
	for _, tc := range []struct {
		desc, code string
		permanent  bool
	}{
		{"throttled", "RequestLimitExceeded", false},
		{"an internal error", "InternalError", false},
		{"unauthorized", "AuthFailure.UnauthorizedOperation", true},
		{"a quota", "LimitExceeded.CertificateLimit", true},
	} {
		f.Inject(tcfake.Fault{Action: "UpdateDomainConfig", Code: tc.code, Times: 1})
		_, err := NewCDN(fastOpts()).Deploy(ctx, deploy.Request{Target: x, Bundle: b})
		if err == nil || deploy.IsPermanent(err) != tc.permanent || !strings.Contains(err.Error(), tc.code+": ") || !strings.Contains(err.Error(), "RequestId ") {
			t.Errorf("%s: got %v, want permanent=%v quoting %s and the RequestId", tc.desc, err, tc.permanent, tc.code)
		}
		if tc.code == "RequestLimitExceeded" && !IsThrottling(err) {
			t.Errorf("IsThrottling(%v) = false", err)
		}
	}
	if _, err := NewCDN(fastOpts()).Deploy(ctx, deploy.Request{Target: x, Bundle: b}); err != nil {
		t.Fatalf("Deploy once the faults are gone: %v", err)
	}

	bad := access(f, nil)
	bad.SecretKey = "a-wrong-secret-key-0123456789"
	_, err := NewCDN(fastOpts()).Deploy(ctx, deploy.Request{Target: tgt("TencentCDN", bad, "www.example.com", nil), Bundle: b})
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "AuthFailure.SignatureFailure") || strings.Contains(err.Error(), bad.SecretKey) {
		t.Errorf("wrong secret: got %v, want a permanent AuthFailure.SignatureFailure without the secret", err)
	}
	unknown := access(f, nil)
	unknown.SecretID = "AKIDunknown"
	_, err = NewCDN(fastOpts()).Deploy(ctx, deploy.Request{Target: tgt("TencentCDN", unknown, "www.example.com", nil), Bundle: b})
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "AuthFailure.SecretIdNotFound") {
		t.Errorf("unknown SecretId: got %v", err)
	}
}

// TestAssumeRole: with RoleArn, calls are signed with the temporary key
// and its token.
func TestAssumeRole(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, map[string]any{"RoleArn": "qcs::cam::uin/100000000001:roleName/certfleet"})
	f.AddCDNDomain("www.example.com")
	b := deploytest.Bundle(t, "www.example.com")
	d := NewCDN(fastOpts())
	for range 2 {
		if _, err := d.Deploy(context.Background(), deploy.Request{Target: tgt("TencentCDN", a, "www.example.com", nil), Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Calls("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole called %d times, want 1 (the session is cached)", n)
	}
}

// TestSweep keeps what is bound, the newest unused upload, and uploads not
// certfleet's.
func TestSweep(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	ctx := context.Background()
	f.AddCDNDomain("www.example.com")
	users := f.Upload(deploytest.Bundle(t, "mine.example.com").CertPEM, "mine")
	x := tgt("TencentCDN", a, "www.example.com", map[string]any{"KeepPrevious": 1})
	d := NewCDN(fastOpts())
	var shas []string
	for range 3 {
		b := deploytest.Bundle(t, "www.example.com")
		shas = append(shas, b.Sha2)
		if _, err := d.Deploy(ctx, deploy.Request{Target: x, Bundle: b}); err != nil {
			t.Fatal(err)
		}
		f.Advance(2 * time.Second) // InsertTime has one-second steps
	}
	if err := d.Sweep(ctx, x); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for id, c := range f.Certs() {
		have[c.Sha] = true
		_ = id
	}
	if have[shas[0]] || !have[shas[1]] || !have[shas[2]] || f.Sha(users) == "" {
		t.Errorf("after the sweep: oldest kept=%v, previous kept=%v, bound kept=%v, user's kept=%v; want false, true, true, true",
			have[shas[0]], have[shas[1]], have[shas[2]], f.Sha(users) != "")
	}
}

// TestDiscover finds CDN domains, CLB default and SNI bindings, EdgeOne domains.
func TestDiscover(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	ctx := context.Background()
	f.AddCDNDomain("cdn.example.com")
	f.AddTEODomain("zone-9", "edge.example.com")
	c1 := f.Upload(deploytest.Bundle(t, "lb.example.com").CertPEM, "")
	l1 := f.AddListener("ap-guangzhou", "lb-a", 443, c1)
	l2 := f.AddListener("ap-shanghai", "lb-b", 8443, c1, "sni1.example.com", "sni2.example.com")
	x := deploy.Target{AccountID: 1, CloudName: CloudName, Access: a}

	keys := map[string]deploy.Discovered{}
	for _, d := range []*Deployer{NewCDN(fastOpts()), NewCLB(fastOpts()), NewTEO(fastOpts())} {
		found, err := d.Discover(ctx, x)
		if err != nil {
			t.Fatal(err)
		}
		for _, fd := range found {
			keys[fd.Key] = fd
			if err := deploy.Validate(d, fd.Config, true); err != nil {
				t.Errorf("%s: the discovered Config does not validate: %v", fd.Key, err)
			}
		}
	}
	want := []string{"cdn.example.com", "lb-a/" + l1 + "/default", "lb-b/" + l2 + "/sni1.example.com", "lb-b/" + l2 + "/sni2.example.com", "zone-9/edge.example.com"}
	for _, k := range want {
		if _, ok := keys[k]; !ok {
			t.Errorf("not discovered: %s (found %v)", k, keys)
		}
	}
	if d := keys["lb-a/"+l1+"/default"]; !d.DefaultResource || !d.EnableHTTPS || d.CertSha2 != f.Sha(c1) || d.ListenerPort != "443" {
		t.Errorf("default binding: %+v", d)
	}
	if d := keys["lb-b/"+l2+"/sni1.example.com"]; d.DefaultResource || d.Domain != "sni1.example.com" || d.RegionID != "ap-shanghai" {
		t.Errorf("SNI binding: %+v", d)
	}
	if d := keys["cdn.example.com"]; d.EnableHTTPS {
		t.Errorf("a CDN domain with HTTPS off: %+v", d)
	}
}

// TestUploadOnceConcurrently: workers of one job deploying the same
// certificate to several resources at once upload it once.
func TestUploadOnceConcurrently(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	a := access(f, nil)
	p := New(fastOpts())
	b := deploytest.Bundle(t, "www.example.com")
	errs := make(chan error, 6)
	for i := range 6 {
		d := fmt.Sprintf("c%d.example.com", i)
		f.AddCDNDomain(d)
		go func() {
			_, err := p.CDN.Deploy(context.Background(), deploy.Request{Target: tgt("TencentCDN", a, d, nil), Bundle: b})
			errs <- err
		}()
	}
	for range 6 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Calls("UploadCertificate"); n != 1 {
		t.Errorf("six concurrent deployments called UploadCertificate %d times, want 1", n)
	}
}

// TestMaxQPS: one limiter per key, shared by the products, at MaxQPS;
// a MaxQPS out of range is refused naming the key.
func TestMaxQPS(t *testing.T) {
	f := tcfake.New(t, testID, testSecret)
	p := New(fastOpts())
	a := access(f, map[string]any{"MaxQPS": 3})
	s1, err := p.CDN.b.session(tgt("TencentCDN", a, "x.example.com", nil), "TencentCDN")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := p.CLB.b.session(tgt("CLB", a, "x.example.com", nil), "CLB")
	if err != nil {
		t.Fatal(err)
	}
	if s1.rate != s2.rate || s1.rate.Limit() != 3 || s1.rate.Burst() != 3 {
		t.Errorf("limiters %p %p at %v/%d, want one shared at 3/3", s1.rate, s2.rate, s1.rate.Limit(), s1.rate.Burst())
	}
	bad := access(f, map[string]any{"MaxQPS": 0})
	if _, err := decodeAccess(bad); err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), `"MaxQPS"`) {
		t.Errorf("MaxQPS 0: got %v, want a permanent error naming MaxQPS", err)
	}
}
