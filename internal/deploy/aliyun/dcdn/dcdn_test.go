package dcdn

import (
	"encoding/json"
	"fmt"
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

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	f.AddKey("LTAI5tDenied", "denied-secret-0123456789")
	f.Deny("LTAI5tDenied", "SetDcdnDomainSSLCertificate")
	target := func(domain string, access *deploy.Access) deploy.Target {
		return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "DCDN", Domain: domain,
			Config: json.RawMessage(`{}`), Access: access}
	}
	fresh := func() string {
		d := fmt.Sprintf("dcdn%d.example.com", ids.Add(1))
		f.AddDCDNDomain(d, 0)
		f.AddCDNDomain(d+".cdn-only", 0) // a CDN domain is not a DCDN one
		return d
	}
	access := f.Access(7, akID, akSecret, fast)
	deploytest.Run(t, deploytest.Harness{
		Deployer: New(aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond})),
		Target:   func(t *testing.T) deploy.Target { return target(fresh(), access) },
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			if s := f.DCDNServedSha2(tgt.Domain); s != "" {
				return []byte(s)
			}
			return nil
		},
		DeployChecksFirst: true,
		BadConfigs:        []deploytest.BadConfig{{Desc: "an unknown key", Config: json.RawMessage(`{"DefaultResource": true}`)}},
		Failing: []deploytest.Failing{
			{Desc: "a CDN domain that is not a DCDN one", Target: func(t *testing.T) deploy.Target {
				return target(fresh()+".cdn-only", access)
			}},
			{Desc: "a key RAM denies SetDcdnDomainSSLCertificate", Target: func(t *testing.T) deploy.Target {
				return target(fresh(), f.Access(9, "LTAI5tDenied", "denied-secret-0123456789", fast))
			}},
		},
	})
}
