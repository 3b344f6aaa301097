package nlb

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
	region   = "cn-shenzhen"
)

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func newListener(t *testing.T, f *aliyunfake.Fake) string {
	id := fmt.Sprintf("lsn-nlb%d", ids.Add(1))
	def := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, "www.example.com").FullChainPEM)
	other := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, "other.example.com").FullChainPEM)
	f.AddNLBListener(region, "nlb-1", id, 443, aliyunfake.ALBCertID(def), aliyunfake.ALBCertID(other))
	return id
}

func casID(certID string) int64 {
	var n int64
	fmt.Sscanf(certID, "%d-", &n)
	return n
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	access := f.Access(7, akID, akSecret, fast)
	for _, def := range []bool{true, false} {
		t.Run(fmt.Sprintf("DefaultResource=%v", def), func(t *testing.T) {
			target := func(lsn string) deploy.Target {
				cfg, _ := json.Marshal(map[string]any{"DefaultResource": def})
				return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "NLB", Domain: "www.example.com",
					RegionID: region, ListenerID: lsn + "@443", Config: cfg, Access: access}
			}
			deploytest.Run(t, deploytest.Harness{
				Deployer: New(aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond})),
				Target:   func(t *testing.T) deploy.Target { return target(newListener(t, f)) },
				Served: func(t *testing.T, tgt deploy.Target) []byte {
					l := f.NLB(strings.TrimSuffix(tgt.ListenerID, "@443"))
					var shas []string
					if def {
						shas = append(shas, f.CASSha2(casID(l.Default)))
					} else {
						for _, a := range l.Additional {
							if c := f.CAS()[casID(a)]; slices.Contains(c.Sans, tgt.Domain) {
								shas = append(shas, c.Sha2)
							}
						}
					}
					if len(shas) == 0 {
						return nil
					}
					return []byte(strings.Join(shas, ","))
				},
				DeployChecksFirst: true,
				Failing: []deploytest.Failing{
					{Desc: "an ALB listener id is not an NLB one", Target: func(t *testing.T) deploy.Target {
						f.AddALBListener(region, "alb-x", "lsn-albonly", 443, "")
						return target("lsn-albonly")
					}},
				},
			})
		})
	}
}
