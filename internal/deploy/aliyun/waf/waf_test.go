package waf

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/aliyunfake"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/cdn"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

const (
	akID     = "LTAI5tCertfleetTest01"
	akSecret = "fake-secret-0123456789abcdef"
	region   = "cn-hangzhou"
	inst     = "waf_v3prepaid_public_cn-test"
)

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func hub() *aliyun.Hub { return aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond}) }

// config is a domain configuration with every field set to something other
// than its zero value, so that a field ModifyDomain lost would show.
func config(name, certID string) aliyunfake.WAFDomain {
	return aliyunfake.WAFDomain{Domain: name, Listen: aliyunfake.WAFListen{
		CertID: certID, CipherSuite: 99, CustomCiphers: []string{"ECDHE-ECDSA-AES128-GCM-SHA256"}, EnableTLSv3: true,
		FocusHTTPS: true, HTTP2Enabled: true, HTTPPorts: []int{80, 8080}, HTTPSPorts: []int{443, 8443}, IPv6Enabled: true,
		ProtectionResource: "share", TLSVersion: "tlsv1.2", XffHeaderMode: 2, XffHeaders: []string{"X-Real-IP"},
	}, Redirect: aliyunfake.WAFRedirect{
		Backends: []string{"192.0.2.10", "192.0.2.11"}, BackupBackends: []string{"192.0.2.99"}, Loadbalance: "roundRobin",
		FocusHTTPBackend: true, SniEnabled: true, SniHost: "origin.example.com", Keepalive: true, KeepaliveRequests: 1000,
		KeepaliveTimeout: 15, Retry: true, ConnectTimeout: 5, ReadTimeout: 120, WriteTimeout: 120, XffProto: true,
		RequestHeaders: []aliyunfake.WAFHeader{{Key: "X-From", Value: "waf"}},
	}}
}

// newDomain adds a protected domain serving someone's certificate.
func newDomain(t *testing.T, f *aliyunfake.Fake, instance string) string {
	name := fmt.Sprintf("www%d.example.com", ids.Add(1))
	theirs := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, name).FullChainPEM)
	f.AddWAFDomain(instance, config(name, aliyunfake.ALBCertID(theirs)))
	return name
}

func target(instance, domain string, access *deploy.Access) deploy.Target {
	return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "WAF", Domain: domain,
		RegionID: region, InstanceID: instance, Access: access}
}

func served(f *aliyunfake.Fake, tgt deploy.Target) []byte {
	d := f.WAF(tgt.InstanceID, tgt.Domain)
	if d.Listen.CertID == "" {
		return nil
	}
	return []byte(f.CASSha2(CASID(d.Listen.CertID)))
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	f.AddWAFInstance(region, inst)
	stall := aliyunfake.New(akID, akSecret)
	t.Cleanup(stall.Close)
	stall.AddWAFInstance(region, inst)
	access := f.Access(7, akID, akSecret, fast)
	deploytest.Run(t, deploytest.Harness{
		Deployer:          New(hub()),
		Target:            func(t *testing.T) deploy.Target { return target(inst, newDomain(t, f, inst), access) },
		Served:            func(t *testing.T, tgt deploy.Target) []byte { return served(f, tgt) },
		DeployChecksFirst: true,
		BadConfigs: []deploytest.BadConfig{
			{Desc: "KeepPrevious too large", Config: json.RawMessage(`{"KeepPrevious": 1000}`)},
			{Desc: "Endpoint with a path", Config: json.RawMessage(`{"Endpoint": "https://waf.example.com/x"}`)},
		},
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			reached := stall.Stall("UploadUserCertificate")
			return target(inst, newDomain(t, stall, inst), stall.Access(8, akID, akSecret, fast)), reached
		},
		Failing: []deploytest.Failing{
			{Desc: "a domain the instance does not protect", Target: func(t *testing.T) deploy.Target {
				return target(inst, "missing.example.com", access)
			}},
			{Desc: "an instance the account does not have", Target: func(t *testing.T) deploy.Target {
				return target("waf_missing", newDomain(t, f, inst), access)
			}},
			{Desc: "no InstanceId", Target: func(t *testing.T) deploy.Target {
				return target("", newDomain(t, f, inst), access)
			}},
			{Desc: "an instance of another region", Target: func(t *testing.T) deploy.Target {
				tgt := target(inst, newDomain(t, f, inst), access)
				tgt.RegionID = "ap-southeast-1"
				return tgt
			}},
			{Desc: "a domain without an HTTPS port", Target: func(t *testing.T) deploy.Target {
				name := fmt.Sprintf("plain%d.example.com", ids.Add(1))
				cfg := config(name, "")
				cfg.Listen.HTTPSPorts = nil
				f.AddWAFDomain(inst, cfg)
				return target(inst, name, access)
			}},
		},
	})
}

// TestRestUntouched: a deployment and its rollback change the domain's
// CertId and nothing else of its Listen and Redirect configuration, and the
// rest of the instance's domains not at all.
func TestRestUntouched(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddWAFInstance(region, inst)
	d := New(hub())
	name, other := newDomain(t, f, inst), newDomain(t, f, inst)
	before, otherBefore := f.WAF(inst, name), f.WAF(inst, other)
	tgt := target(inst, name, f.Access(7, akID, akSecret, fast))
	b := deploytest.Bundle(t, name)
	prev, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: tgt})
	if err != nil {
		t.Fatal(err)
	}
	after := f.WAF(inst, name)
	if after.Modified != 1 || after.Listen.CertID == before.Listen.CertID || string(served(f, tgt)) != b.Sha2 {
		t.Fatalf("after the deployment the domain binds %q (%d changes), want the new certificate", after.Listen.CertID, after.Modified)
	}
	want := before
	want.Listen.CertID, want.Modified = after.Listen.CertID, 1
	if !reflect.DeepEqual(after, want) {
		t.Errorf("the deployment changed more than CertId:\nbefore %+v\nafter  %+v", before, after)
	}
	if got := f.WAF(inst, other); !reflect.DeepEqual(got, otherBefore) {
		t.Errorf("another domain changed: before %+v, after %+v", otherBefore, got)
	}
	if err := d.Rollback(t.Context(), deploy.Request{Target: tgt}, prev); err != nil {
		t.Fatal(err)
	}
	back := f.WAF(inst, name)
	want.Listen.CertID, want.Modified = before.Listen.CertID, 2
	if !reflect.DeepEqual(back, want) {
		t.Errorf("the rollback left:\n%+v\nwant\n%+v", back, want)
	}
}

// TestDiscoverAndSweep: discovery finds the domains of the instances of the
// credential's WAF regions, and a CAS sweep of another product keeps what a
// WAF domain binds.
func TestDiscoverAndSweep(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddWAFInstance(region, inst)
	f.AddWAFInstance("ap-southeast-1", "waf_intl")
	h := hub()
	d, c := New(h), cdn.New(h)
	name := newDomain(t, f, inst)
	intl := newDomain(t, f, "waf_intl")
	plain := fmt.Sprintf("plain%d.example.com", ids.Add(1))
	cfg := config(plain, "")
	cfg.Listen.HTTPSPorts = nil
	f.AddWAFDomain(inst, cfg)
	access := f.Access(7, akID, akSecret, map[string]any{"MaxQPS": 1000, "Regions": []string{"cn-hangzhou", "ap-southeast-1", "cn-beijing"}})

	b := deploytest.Bundle(t, name)
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: target(inst, name, access)}); err != nil {
		t.Fatal(err)
	}
	found, err := d.Discover(t.Context(), deploy.Target{AccountID: 1, CloudName: "aliyun", CloudProduct: "WAF", Access: access})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]deploy.Discovered{}
	for _, x := range found {
		got[x.Key] = x
		if _, err := deploy.Check(d, deploy.Target{CloudName: "aliyun", CloudProduct: "WAF", Domain: x.Domain, RegionID: x.RegionID, InstanceID: x.InstanceID, Config: x.Config}, true); err != nil {
			t.Errorf("discovered %s does not validate: %v", x.Key, err)
		}
	}
	if len(got) != 3 {
		t.Errorf("discovered %d resources, want 3: %+v", len(got), found)
	}
	if x := got[region+"/"+inst+"/"+name]; x.Domain != name || x.InstanceID != inst || !x.EnableHTTPS || x.CertSha2 != b.Sha2 || x.CertEndTime.IsZero() {
		t.Errorf("the deployed domain was discovered as %+v, want HTTPS serving %s", x, b.Sha2)
	}
	if x := got["ap-southeast-1/waf_intl/"+intl]; x.RegionID != "ap-southeast-1" || x.CertSha2 == "" {
		t.Errorf("the international instance's domain: %+v", x)
	}
	if x := got[region+"/"+inst+"/"+plain]; x.EnableHTTPS || x.CertSha2 != "" {
		t.Errorf("the HTTP-only domain: %+v", x)
	}
	if n := f.Calls("DescribeInstance"); n != 2 {
		t.Errorf("DescribeInstance called %d times, want 2 (cn-beijing has no WAF API)", n)
	}

	// A CDN sweep keeping nothing idle deletes every certfleet upload but
	// the one the WAF domain binds; without WAF counted it would try to
	// delete it too and CAS would refuse (an error).
	f.AddCASCert(aliyun.UploadName("00AA"), deploytest.Bundle(t, "idle.example.com").FullChainPEM)
	if err := c.Sweep(t.Context(), deploy.Target{AccountID: 1, CloudName: "aliyun", CloudProduct: "CDN", Config: json.RawMessage(`{"KeepPrevious":0}`), Access: access}); err != nil {
		t.Fatal(err)
	}
	kept := 0
	for _, x := range f.CAS() {
		if x.Sha2 == b.Sha2 {
			kept++
		}
		if x.Name == aliyun.UploadName("00AA") {
			t.Errorf("the idle upload %s was kept", x.Name)
		}
	}
	if kept != 1 {
		t.Errorf("%d copies of the certificate the WAF domain binds are left, want 1", kept)
	}
}

// TestErrors: a RAM denial of ModifyDomain fails permanently, naming the
// action, and changes nothing; a CAS certificate deleted behind certfleet's
// back is uploaded again and bound within the same deployment.
func TestErrors(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddWAFInstance(region, inst)
	d := New(hub())
	access := f.Access(7, akID, akSecret, fast)

	name := newDomain(t, f, inst)
	before := f.WAF(inst, name)
	f.Deny(akID, "ModifyDomain")
	_, err := d.Deploy(t.Context(), deploy.Request{Bundle: deploytest.Bundle(t, name), Target: target(inst, name, access)})
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "Forbidden.RAM") || !strings.Contains(err.Error(), "ModifyDomain") {
		t.Errorf("a denied ModifyDomain: %v, want a permanent Forbidden.RAM error naming the action", err)
	}
	if got := f.WAF(inst, name); !reflect.DeepEqual(got, before) {
		t.Errorf("a denied deployment changed the domain: %+v, want %+v", got, before)
	}

	f.AddKey("LTAI5tOther", "other-secret")
	other := f.Access(9, "LTAI5tOther", "other-secret", fast)
	b := deploytest.Bundle(t, name)
	first, second := newDomain(t, f, inst), newDomain(t, f, inst)
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: target(inst, first, other)}); err != nil {
		t.Fatal(err)
	}
	f.DeleteCAS(CASID(f.WAF(inst, first).Listen.CertID))
	f.ResetCalls()
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: target(inst, second, other)}); err != nil {
		t.Fatalf("binding a CAS certificate deleted since its upload: %v", err)
	}
	if got := string(served(f, target(inst, second, other))); got != b.Sha2 {
		t.Errorf("the domain serves %q, want %s", got, b.Sha2)
	}
	if n, m := f.Calls("ModifyDomain"), f.Calls("UploadUserCertificate"); n != 2 || m != 1 {
		t.Errorf("ModifyDomain %d times, UploadUserCertificate %d; want 2 (refused, then the new copy) and 1", n, m)
	}
}
