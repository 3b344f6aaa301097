package cdn

import (
	"encoding/json"
	"fmt"
	"strings"
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
)

var ids atomic.Int64

// fast lifts the default rate limit (10 calls a second) to keep tests quick.
var fast = map[string]any{"MaxQPS": 1000}

func hub() *aliyun.Hub { return aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond}) }

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	f.AddKey("LTAI5tDenied", "denied-secret-0123456789")
	f.Deny("LTAI5tDenied", "SetCdnDomainSSLCertificate")
	f.Deny("LTAI5tDenied", "BatchSetCdnDomainServerCertificate")
	stall := aliyunfake.New(akID, akSecret)
	t.Cleanup(stall.Close)
	target := func(fk *aliyunfake.Fake, domain string, access *deploy.Access) deploy.Target {
		return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "CDN", Domain: domain,
			Config: json.RawMessage(`{}`), Access: access}
	}
	fresh := func(fk *aliyunfake.Fake) string {
		d := fmt.Sprintf("cdn%d.example.com", ids.Add(1))
		fk.AddCDNDomain(d, 0)
		return d
	}
	deploytest.Run(t, deploytest.Harness{
		Deployer: New(hub()),
		Target: func(t *testing.T) deploy.Target {
			return target(f, fresh(f), f.Access(7, akID, akSecret, fast))
		},
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			if s := f.CDNServedSha2(tgt.Domain); s != "" {
				return []byte(s)
			}
			return nil
		},
		DeployChecksFirst: true,
		BadConfigs: []deploytest.BadConfig{
			{Desc: "KeepPrevious below 0", Config: json.RawMessage(`{"KeepPrevious": -1}`)},
			{Desc: "an Endpoint that is not an address", Config: json.RawMessage(`{"Endpoint": "ftp://cdn.example.com/x"}`)},
			{Desc: "an unknown key", Config: json.RawMessage(`{"Domain": "x"}`)},
		},
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			reached := stall.Stall("BatchSetCdnDomainServerCertificate")
			return target(stall, fresh(stall), stall.Access(8, akID, akSecret, fast)), reached
		},
		Failing: []deploytest.Failing{
			{Desc: "a domain the account does not have", Target: func(t *testing.T) deploy.Target {
				return target(f, "missing.example.com", f.Access(7, akID, akSecret, fast))
			}},
			{Desc: "a key RAM denies SetCdnDomainSSLCertificate", Target: func(t *testing.T) deploy.Target {
				return target(f, fresh(f), f.Access(9, "LTAI5tDenied", "denied-secret-0123456789", fast))
			}},
			{Desc: "a wrong AccessKeySecret", Target: func(t *testing.T) deploy.Target {
				return target(f, fresh(f), f.Access(10, akID, "wrong-secret-0123456789", fast))
			}},
		},
	})
}

// TestUploadOnce: many deployments of one certificate upload it once.
func TestUploadOnce(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	d := New(hub())
	b := deploytest.Bundle(t, "www.example.com")
	done := make(chan error)
	for i := range 20 {
		name := fmt.Sprintf("d%d.example.com", i)
		f.AddCDNDomain(name, 0)
		go func() {
			_, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: deploy.Target{AccountID: 1, Domain: name,
				Access: f.Access(7, akID, akSecret, fast)}})
			done <- err
		}()
	}
	for range 20 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := f.Calls("UploadUserCertificate"); n != 1 {
		t.Errorf("UploadUserCertificate called %d times, want 1", n)
	}
	// The 20 bindings shared batch calls.
	if n, m := f.Calls("BatchSetCdnDomainServerCertificate"), f.Calls("SetCdnDomainSSLCertificate"); n == 0 || n >= 20 || m != 0 {
		t.Errorf("20 concurrent deployments made %d batch and %d single calls, want fewer than 20 batch calls", n, m)
	}
	for i := range 20 {
		if got := f.CDNServedSha2(fmt.Sprintf("d%d.example.com", i)); got != b.Sha2 {
			t.Errorf("d%d.example.com serves %q", i, got)
		}
	}
	// A new Hub (a restarted server) finds the upload by its SHA-256.
	f.AddCDNDomain("late.example.com", 0)
	if _, err := New(hub()).Deploy(t.Context(), deploy.Request{Bundle: b, Target: deploy.Target{AccountID: 1, Domain: "late.example.com",
		Access: f.Access(7, akID, akSecret, fast)}}); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("UploadUserCertificate"); n != 1 {
		t.Errorf("after a restart UploadUserCertificate was called %d times in all, want 1", n)
	}
}

// TestUnbatched: with Batch false every domain gets its own calls.
func TestUnbatched(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddCDNDomain("www.example.com", 0)
	f.AddCDNDomain("nope.example.com", 0)
	d := New(hub())
	access := f.Access(7, akID, akSecret, map[string]any{"MaxQPS": 1000, "Batch": false})
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: deploytest.Bundle(t, "www.example.com"),
		Target: deploy.Target{AccountID: 1, Domain: "www.example.com", Access: access}}); err != nil {
		t.Fatal(err)
	}
	if n, m := f.Calls("BatchSetCdnDomainServerCertificate"), f.Calls("SetCdnDomainSSLCertificate"); n != 0 || m != 1 {
		t.Errorf("%d batch and %d single calls, want 0 and 1", n, m)
	}
}

// TestBatchOneBad: a batch holding an unknown domain fails that domain
// alone.
func TestBatchOneBad(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	d := New(hub())
	b := deploytest.Bundle(t, "www.example.com")
	errs := make(chan error)
	for i := range 10 {
		name := fmt.Sprintf("d%d.example.com", i)
		if i != 3 {
			f.AddCDNDomain(name, 0)
		}
		go func() {
			_, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: deploy.Target{AccountID: 1, Domain: name, Access: f.Access(7, akID, akSecret, fast)}})
			if err != nil && !strings.Contains(err.Error(), "d3.example.com") {
				err = fmt.Errorf("%s: %w", name, err)
			}
			errs <- err
		}()
	}
	failed := 0
	for range 10 {
		if err := <-errs; err != nil {
			failed++
			if aliyun.Code(err) != "InvalidDomain.NotFound" || !strings.Contains(err.Error(), "d3.example.com") {
				t.Errorf("unexpected failure: %v", err)
			}
		}
	}
	if failed != 1 {
		t.Errorf("%d deployments failed, want only d3's", failed)
	}
}

// TestErrors: Alibaba's codes are classified and quoted with the RequestId.
func TestErrors(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddKey("LTAI5tDenied", "denied-secret-0123456789")
	f.Deny("LTAI5tDenied", "DescribeDomainCertificateInfo")
	f.AddCDNDomain("www.example.com", 0)
	d := New(hub())
	b := deploytest.Bundle(t, "www.example.com")
	req := func(domain string, a *deploy.Access) deploy.Request {
		return deploy.Request{Bundle: b, Target: deploy.Target{AccountID: 1, Domain: domain, Access: a}}
	}
	for _, tt := range []struct {
		desc      string
		req       deploy.Request
		code      string
		permanent bool
	}{
		{"unknown domain", req("nope.example.com", f.Access(1, akID, akSecret, fast)), "InvalidDomain.NotFound", true},
		{"RAM denies", req("www.example.com", f.Access(2, "LTAI5tDenied", "denied-secret-0123456789", fast)), "Forbidden.RAM", true},
		{"unknown key", req("www.example.com", f.Access(3, "LTAI5tNobody", "whatever-secret-123", fast)), "InvalidAccessKeyId.NotFound", true},
		{"wrong secret", req("www.example.com", f.Access(4, akID, "wrong-secret-0123456789", fast)), "SignatureDoesNotMatch", true},
	} {
		t.Run(tt.desc, func(t *testing.T) {
			_, err := d.Deploy(t.Context(), tt.req)
			if err == nil || aliyun.Code(err) != tt.code || deploy.IsPermanent(err) != tt.permanent || !strings.Contains(err.Error(), "RequestId ") {
				t.Fatalf("got %v (code %q, permanent %v), want %s, permanent %v, with its RequestId", err, aliyun.Code(err), deploy.IsPermanent(err), tt.code, tt.permanent)
			}
		})
	}
	t.Run("throttling and 5xx are retried", func(t *testing.T) {
		f.Fail("BatchSetCdnDomainServerCertificate", "Throttling.User", 2)
		f.Fail("DescribeDomainCertificateInfo", "ServiceUnavailable", 1)
		if _, err := d.Deploy(t.Context(), req("www.example.com", f.Access(1, akID, akSecret, fast))); err != nil {
			t.Fatalf("Deploy through 2 throttlings and a 503: %v", err)
		}
		if got := f.CDNServedSha2("www.example.com"); got != b.Sha2 {
			t.Fatalf("serves %q, want %q", got, b.Sha2)
		}
	})
	t.Run("throttling that lasts fails transiently", func(t *testing.T) {
		f.Fail("DescribeDomainCertificateInfo", "Throttling.User", 100)
		defer f.Fail("DescribeDomainCertificateInfo", "Throttling.User", 0)
		_, err := d.Deploy(t.Context(), req("www.example.com", f.Access(1, akID, akSecret, fast)))
		if err == nil || deploy.IsPermanent(err) || aliyun.Code(err) != "Throttling.User" {
			t.Fatalf("got %v, want a transient Throttling.User", err)
		}
	})
}

// TestRollbackAfterDeletion: when the certificate a snapshot names was
// deleted from CAS since, rollback binds the engine's copy of it.
func TestRollbackAfterDeletion(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddCDNDomain("www.example.com", 0)
	d := New(hub())
	tgt := deploy.Target{AccountID: 1, Domain: "www.example.com", Access: f.Access(7, akID, akSecret, fast)}
	a, b := deploytest.Bundle(t, "www.example.com"), deploytest.Bundle(t, "www.example.com")
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: a, Target: tgt}); err != nil {
		t.Fatal(err)
	}
	aID := f.CDN()["www.example.com"].CertID
	previous, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: tgt})
	if err != nil {
		t.Fatal(err)
	}
	f.DeleteCAS(aID)
	if err := d.Rollback(t.Context(), deploy.Request{Bundle: a, Target: tgt}, previous); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if got := f.CDNServedSha2("www.example.com"); got != a.Sha2 {
		t.Errorf("after the rollback the domain serves %q, want %q", got, a.Sha2)
	}
}
