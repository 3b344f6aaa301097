package oss

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
	region   = "cn-qingdao"
)

var (
	ids  atomic.Int64
	fast = map[string]any{"MaxQPS": 1000}
)

func hub() *aliyun.Hub { return aliyun.NewHub(aliyun.Options{Backoff: 5 * time.Millisecond}) }

// newBucket adds a bucket with the custom domains www.example.com (no
// certificate) and other.example.com (someone's certificate).
func newBucket(t *testing.T, f *aliyunfake.Fake) string {
	name := fmt.Sprintf("bucket-%d", ids.Add(1))
	other := f.AddCASCert(fmt.Sprintf("theirs-%d", ids.Add(1)), deploytest.Bundle(t, "other.example.com").FullChainPEM)
	f.AddBucket(region, name, "", "www.example.com", "other.example.com")
	f.SetOSSCert(name, "other.example.com", aliyunfake.ALBCertID(other))
	return name
}

func bucketTarget(bucket string, access *deploy.Access) deploy.Target {
	return deploy.Target{ResourceID: ids.Add(1), AccountID: 1, CloudName: "aliyun", CloudProduct: "OSS", Domain: "www.example.com",
		RegionID: region, InstanceID: bucket, Config: json.RawMessage(`{}`), Access: access}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	t.Cleanup(f.Close)
	f.AddKey("LTAI5tDenied", "denied-secret-0123456789")
	f.Deny("LTAI5tDenied", "PutCname")
	access := f.Access(7, akID, akSecret, fast)
	deploytest.Run(t, deploytest.Harness{
		Deployer: New(hub()),
		Target:   func(t *testing.T) deploy.Target { return bucketTarget(newBucket(t, f), access) },
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			id := f.OSSCert(tgt.InstanceID, tgt.Domain)
			if id == "" {
				return nil
			}
			return []byte(f.CASSha2(casID(id)))
		},
		DeployChecksFirst: true,
		BadConfigs: []deploytest.BadConfig{
			{Desc: "an Endpoint with a query", Config: json.RawMessage(`{"Endpoint": "https://oss.example.com?x=1"}`)},
		},
		Failing: []deploytest.Failing{
			{Desc: "a bucket the account does not have", Target: func(t *testing.T) deploy.Target { return bucketTarget("nope", access) }},
			{Desc: "a key denied PutCname", Target: func(t *testing.T) deploy.Target {
				return bucketTarget(newBucket(t, f), f.Access(9, "LTAI5tDenied", "denied-secret-0123456789", fast))
			}},
			{Desc: "a wrong secret", Target: func(t *testing.T) deploy.Target {
				return bucketTarget(newBucket(t, f), f.Access(10, akID, "wrong-secret-0123456789", fast))
			}},
		},
	})
}

// TestOtherDomainUntouched: deploying to one custom domain leaves the
// bucket's other domain bound as it was.
func TestOtherDomainUntouched(t *testing.T) {
	t.Parallel()
	f := aliyunfake.New(akID, akSecret)
	defer f.Close()
	b := newBucket(t, f)
	before := f.OSSCert(b, "other.example.com")
	if _, err := New(hub()).Deploy(t.Context(), deploy.Request{Bundle: deploytest.Bundle(t, "www.example.com"),
		Target: bucketTarget(b, f.Access(7, akID, akSecret, fast))}); err != nil {
		t.Fatal(err)
	}
	if after := f.OSSCert(b, "other.example.com"); after != before {
		t.Errorf("other.example.com: %s before, %s after", before, after)
	}
}
