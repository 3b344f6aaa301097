package aliyun_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/aliyunfake"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/cdn"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/egress"
)

const (
	akID     = "LTAI5tCertfleetTest01"
	akSecret = "fake-secret-0123456789abcdef"
)

func deployCDN(t *testing.T, h *aliyun.Hub, f *aliyunfake.Fake, access *deploy.Access, cfg string, account int64) error {
	t.Helper()
	f.AddCDNDomain("www.example.com", 0)
	_, err := cdn.New(h).Deploy(t.Context(), deploy.Request{Bundle: deploytest.Bundle(t, "www.example.com"),
		Target: deploy.Target{AccountID: account, Domain: "www.example.com", Config: json.RawMessage(cfg), Access: access}})
	return err
}

// TestAssumeRole: with a RoleArn every call is signed with the STS key,
// assumed once.
func TestAssumeRole(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.AddRole("acs:ram::123:role/certfleet")
	// The key itself may call nothing but AssumeRole.
	for _, a := range []string{"DescribeDomainCertificateInfo", "SetCdnDomainSSLCertificate", "UploadUserCertificate", "ListUserCertificateOrder"} {
		f.Deny(akID, a)
	}
	h := aliyun.NewHub(aliyun.Options{})
	access := f.Access(1, akID, akSecret, map[string]any{"RoleArn": "acs:ram::123:role/certfleet", "MaxQPS": 1000})
	if err := deployCDN(t, h, f, access, `{}`, 1); err != nil {
		t.Fatal(err)
	}
	if n := f.Calls("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole called %d times, want 1", n)
	}
	bad := f.Access(2, akID, akSecret, map[string]any{"RoleArn": "acs:ram::123:role/nobody"})
	if err := deployCDN(t, h, f, bad, `{}`, 1); err == nil || !strings.Contains(err.Error(), "EntityNotExist.Role") || !deploy.IsPermanent(err) {
		t.Errorf("an unknown role: %v, want a permanent EntityNotExist.Role", err)
	}
}

// TestEndpointRules: the resource's Endpoint wins for its product; CAS
// follows the credential's rules.
func TestEndpointRules(t *testing.T) {
	t.Parallel()
	cdnFake := aliyunfake.New(akID, akSecret)
	defer cdnFake.Close()
	casFake := aliyunfake.New(akID, akSecret)
	defer casFake.Close()
	h := aliyun.NewHub(aliyun.Options{})
	access := casFake.Access(1, akID, akSecret, map[string]any{"Endpoints": map[string]string{"CAS": casFake.URL(), "*": "http://127.0.0.1:1"}, "MaxQPS": 1000})
	cdnFake.AddCDNDomain("www.example.com", 0)
	// The domain lives in cdnFake, the certificate goes to casFake: the
	// fake checks CAS ids, so bind to an id casFake gave would fail on
	// cdnFake; this test only checks where each call went.
	_ = deployCDN(t, h, cdnFake, access, `{"Endpoint": "`+cdnFake.URL()+`"}`, 1)
	if cdnFake.Calls("DescribeDomainCertificateInfo") == 0 || cdnFake.Calls("UploadUserCertificate") != 0 {
		t.Errorf("cdn fake calls %v: want the CDN calls there and no CAS call", cdnFake.AllCalls())
	}
	if casFake.Calls("UploadUserCertificate") != 1 || casFake.Calls("DescribeDomainCertificateInfo") != 0 {
		t.Errorf("cas fake calls %v: want the CAS upload there only", casFake.AllCalls())
	}
}

// TestEgress: an account the egress policy keeps off loopback cannot reach
// the endpoint, permanently.
func TestEgress(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	accounts := func(_ context.Context, id int64) (egress.Scope, error) {
		return egress.Scope{AccountID: id, Root: id == 1}, nil
	}
	h := aliyun.NewHub(aliyun.Options{Egress: egress.New(egress.Policy{}, accounts, nil)})
	err := deployCDN(t, h, f, f.Access(1, akID, akSecret, nil), `{}`, 7)
	if !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "egress") || f.Calls("DescribeDomainCertificateInfo") != 0 {
		t.Fatalf("tenant: %v, want a permanent egress refusal and no call", err)
	}
	if err := deployCDN(t, h, f, f.Access(1, akID, akSecret, nil), `{}`, 1); err != nil {
		t.Fatalf("root: %v", err)
	}
}

// TestRateLimit: calls wait for the credential's MaxQPS (4, below the
// provider's 5) instead of being
// throttled by the provider's per-action limit.
func TestRateLimit(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	f.SetQPS("DescribeDomainCertificateInfo", 5)
	h := aliyun.NewHub(aliyun.Options{Attempts: 1})
	c, err := h.Client(deploy.Target{AccountID: 1, Access: f.Access(1, akID, akSecret, map[string]any{"MaxQPS": 4})}, "CDN", "")
	if err != nil {
		t.Fatal(err)
	}
	f.AddCDNDomain("www.example.com", 0)
	start := time.Now()
	for range 12 {
		if err := c.Call(t.Context(), aliyun.CDN, true, "DescribeDomainCertificateInfo", map[string]string{"DomainName": "www.example.com"}, nil); err != nil {
			t.Fatalf("a call within MaxQPS was refused: %v", err)
		}
	}
	t.Logf("12 calls at 4 per second took %v", time.Since(start))
}
