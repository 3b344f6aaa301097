package alb

import (
	"encoding/json"
	"fmt"
	"slices"
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
	region   = "cn-beijing"
)

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func hub() *aliyun.Hub { return aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond}) }

// newListener adds an HTTPS listener serving someone's certificate for
// www.example.com by default and one for other.example.com as an
// additional certificate.
func newListener(t *testing.T, f *aliyunfake.Fake) string {
	id := fmt.Sprintf("lsn-%d", ids.Add(1))
	def := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, "www.example.com").FullChainPEM)
	other := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, "other.example.com").FullChainPEM)
	f.AddALBListener(region, "alb-1", id, 443, aliyunfake.ALBCertID(def), aliyunfake.ALBCertID(other))
	return id
}

func target(lsn, domain string, def bool, access *deploy.Access) deploy.Target {
	cfg, _ := json.Marshal(map[string]any{"DefaultResource": def})
	return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "ALB", Domain: domain,
		RegionID: region, ListenerPort: lsn + "@443", Config: cfg, Access: access}
}

// served is the SHA-256s of what serves domain (the default certificate
// for def), comma-joined.
func served(f *aliyunfake.Fake, lsn, domain string, def bool) []byte {
	l := f.ALB(lsn)
	var shas []string
	if def {
		shas = append(shas, f.CASSha2(casID(l.Default)))
	} else {
		for _, a := range l.Additional {
			c := f.CAS()[casID(a)]
			if slices.Contains(c.Sans, domain) {
				shas = append(shas, c.Sha2)
			}
		}
	}
	if len(shas) == 0 {
		return nil
	}
	return []byte(strings.Join(shas, ","))
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	stall := aliyunfake.New(akID, akSecret)
	t.Cleanup(stall.Close)
	for _, def := range []bool{true, false} {
		t.Run(fmt.Sprintf("DefaultResource=%v", def), func(t *testing.T) {
			access := f.Access(7, akID, akSecret, fast)
			deploytest.Run(t, deploytest.Harness{
				Deployer:          New(hub()),
				Target:            func(t *testing.T) deploy.Target { return target(newListener(t, f), "www.example.com", def, access) },
				Served:            func(t *testing.T, tgt deploy.Target) []byte { return served(f, ListenerID(tgt), tgt.Domain, def) },
				DeployChecksFirst: true,
				BadConfigs: []deploytest.BadConfig{
					{Desc: "KeepPrevious too large", Config: json.RawMessage(`{"KeepPrevious": 1000}`)},
				},
				Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
					reached := stall.Stall("UploadUserCertificate")
					return target(newListener(t, stall), "www.example.com", def, stall.Access(8, akID, akSecret, fast)), reached
				},
				Failing: []deploytest.Failing{
					{Desc: "a listener the account does not have", Target: func(t *testing.T) deploy.Target {
						return target("lsn-missing", "www.example.com", def, access)
					}},
					{Desc: "a listener of another region", Target: func(t *testing.T) deploy.Target {
						tgt := target(newListener(t, f), "www.example.com", def, access)
						tgt.RegionID = "cn-shenzhen"
						return tgt
					}},
				},
			})
		})
	}
}

// TestAdditionalSafety: replacing the additional certificate of one domain
// leaves the default and the other additional certificates as they were,
// and keeps an old certificate that still serves another name.
func TestAdditionalSafety(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	d := New(hub())
	lsn := newListener(t, f)
	shared := f.AddCASCert("theirs-shared", deploytest.Bundle(t, "api.example.com").FullChainPEM) // covers api only
	f.AddALBListener(region, "alb-1", lsn, 443, f.ALB(lsn).Default, append(f.ALB(lsn).Additional, aliyunfake.ALBCertID(shared))...)
	before := f.ALB(lsn)
	access := f.Access(7, akID, akSecret, fast)
	b := deploytest.Bundle(t, "other.example.com")
	if _, err := d.Deploy(t.Context(), deploy.Request{Bundle: b, Target: target(lsn, "other.example.com", false, access)}); err != nil {
		t.Fatal(err)
	}
	after := f.ALB(lsn)
	if after.Default != before.Default || !slices.Contains(after.Additional, aliyunfake.ALBCertID(shared)) || len(after.Additional) != 2 {
		t.Errorf("before %+v, after %+v: want the default and api's certificate untouched, other's replaced", before, after)
	}
	if got := string(served(f, lsn, "other.example.com", false)); got != b.Sha2 {
		t.Errorf("other.example.com is served by %s, want %s", got, b.Sha2)
	}
}
