package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/aliyun"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/alb"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/aliyunfake"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/cdn"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/oss"
	"github.com/certfleet/certfleet/internal/deploy/aliyun/waf"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

const (
	aliAK     = "LTAI5tE2eCertfleet"
	aliSecret = "e2e-aliyun-secret-0123456789"
	aliRegion = "cn-hangzhou"
)

func leafSha(t *testing.T, ch certstest.Chain) string {
	t.Helper()
	b, _ := pem.Decode([]byte(ch.CertPEM))
	sum := sha256.Sum256(b.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// aliState is everything the fake account binds, by resource, as SHA-256s
// of the certificates served ("" for nothing).
type aliState map[string]string

func aliyunState(f *aliyunfake.Fake) aliState {
	s := aliState{}
	for name := range f.CDN() {
		s["cdn "+name] = f.CDNServedSha2(name)
	}
	l := f.SLB("lb-e2e", 443)
	s["slb default"] = f.SLBCertSha2(l.ServerCert)
	for d, id := range l.Extensions {
		s["slb sni "+d] = f.SLBCertSha2(id)
	}
	for _, d := range []string{"static.example.com", "img.example.com"} {
		if id := f.OSSCert("bucket-e2e", d); id != "" {
			s["oss "+d] = f.CASSha2(casIDOf(id))
		} else {
			s["oss "+d] = ""
		}
	}
	a := f.ALB("lsn-e2e1")
	s["alb default"] = f.CASSha2(casIDOf(a.Default))
	for _, id := range a.Additional {
		c := f.CAS()[casIDOf(id)]
		s["alb additional "+c.CommonName] = c.Sha2
	}
	for _, d := range []string{"www.example.com", "api.example.com"} {
		w := f.WAF("waf_e2e", d)
		s["waf "+d] = f.CASSha2(casIDOf(w.Listen.CertID))
		// The rest of the domain's configuration, which only the
		// certificate may change.
		w.Listen.CertID, w.Modified = "", 0
		s["waf config "+d] = fmt.Sprintf("%+v", w)
	}
	return s
}

// wafDomain is a WAF domain configuration with most fields set.
func wafDomain(name string, casID int64) aliyunfake.WAFDomain {
	return aliyunfake.WAFDomain{Domain: name, Listen: aliyunfake.WAFListen{CertID: aliyunfake.ALBCertID(casID),
		HTTP2Enabled: true, HTTPPorts: []int{80}, HTTPSPorts: []int{443, 8443}, TLSVersion: "tlsv1.2", EnableTLSv3: true,
		CipherSuite: 2, XffHeaderMode: 2, XffHeaders: []string{"X-Real-IP"}},
		Redirect: aliyunfake.WAFRedirect{Backends: []string{"192.0.2.1"}, Loadbalance: "iphash", Keepalive: true, KeepaliveRequests: 1000,
			KeepaliveTimeout: 15, ConnectTimeout: 5, ReadTimeout: 120, WriteTimeout: 120, SniEnabled: true, SniHost: "origin.example.com",
			RequestHeaders: []aliyunfake.WAFHeader{{Key: "X-From", Value: "waf"}}}}
}

func casIDOf(certID string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSuffix(certID, "-cn-hangzhou"), 10, 64)
	return n
}

// writes counts the calls that change a binding or upload.
func writes(f *aliyunfake.Fake) int {
	n := 0
	for _, a := range []string{"UploadUserCertificate", "SetCdnDomainSSLCertificate", "BatchSetCdnDomainServerCertificate", "UploadServerCertificate", "SetLoadBalancerHTTPSListenerAttribute",
		"AddDomainExtension", "SetDomainExtensionAttribute", "DeleteDomainExtension", "UpdateListenerAttribute",
		"AssociateAdditionalCertificatesWithListener", "DissociateAdditionalCertificatesFromListener", "PutCname", "ModifyDomain"} {
		n += f.Calls(a)
	}
	return n
}

// TestAliyunTargets: a job over CDN, SLB (default and SNI), ALB (default
// and additional), OSS and WAF resources of a fake Alibaba Cloud account deploys
// through throttling and 503s; the fake shows every new binding and nothing else
// changed, each certificate uploaded once; the same job again uploads and
// writes nothing; a second certificate, a cleanup that keeps what rollback
// needs, and rollbacks that restore the account exactly.
func TestAliyunTargets(t *testing.T) {
	skipShort(t)
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Parallel()
		f := aliyunfake.New(aliAK, aliSecret)
		t.Cleanup(f.Close)
		// The account as someone left it: certificates certfleet did not
		// upload, on every product.
		theirs := deploytest.Bundle(t, "theirs.example.com")
		theirCAS := f.AddCASCert("theirs", theirs.FullChainPEM)
		otherCAS := f.AddCASCert("theirs-other", deploytest.Bundle(t, "other.example.com").FullChainPEM)
		f.AddCDNDomain("cdn1.example.com", 0)
		f.AddCDNDomain("cdn2.example.com", theirCAS)
		f.AddCDNDomain("untouched.example.com", theirCAS)
		theirSLB := f.AddSLBCert(aliRegion, "theirs", theirs.FullChainPEM)
		f.AddLoadBalancer(aliRegion, "lb-e2e", theirSLB, 443)
		f.AddDomainExtension("lb-e2e", 443, "other.example.com", f.AddSLBCert(aliRegion, "theirs-other", deploytest.Bundle(t, "other.example.com").FullChainPEM))
		f.AddALBListener(aliRegion, "alb-e2e", "lsn-e2e1", 443, aliyunfake.ALBCertID(theirCAS), aliyunfake.ALBCertID(otherCAS))
		f.AddBucket(aliRegion, "bucket-e2e", aliyunfake.ALBCertID(theirCAS), "static.example.com", "img.example.com")
		f.AddWAFInstance(aliRegion, "waf_e2e")
		f.AddWAFDomain("waf_e2e", wafDomain("www.example.com", theirCAS))
		f.AddWAFDomain("waf_e2e", wafDomain("api.example.com", theirCAS))
		original := aliyunState(f)

		r := newJobRig(t, engine, "--egress-allow", "127.0.0.1/32")
		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "aliyun", "Name": "fake account",
			"SecretId": aliAK, "SecretKey": aliSecret,
			"Config": jsonConfig(map[string]any{"Endpoints": map[string]string{"*": f.URL()}, "MaxQPS": 200})}), "AccessId")
		resource := func(product, domain, instance, listener string, def bool) int64 {
			q := map[string]string{"CloudName": "aliyun", "CloudProduct": product, "Domain": domain, "Name": product + " " + domain + listener,
				"CloudAccessId": strconv.FormatInt(access, 10), "RegionId": aliRegion}
			if instance != "" {
				q["InstanceId"] = instance
			}
			if listener != "" {
				q["ListenerPort"] = listener
			}
			if def {
				q["Config"] = `{"DefaultResource":true}`
			}
			return idOf(t, r.own("CreateCloudResource", q), "Id")
		}
		resources := []int64{
			resource("CDN", "cdn1.example.com", "", "", false),
			resource("CDN", "cdn2.example.com", "", "", false),
			resource("SLB", "", "lb-e2e", "443", true),
			resource("SLB", "www.example.com", "lb-e2e", "443", false),
			resource("ALB", "", "alb-e2e", "lsn-e2e1@443", true),
			resource("ALB", "www.example.com", "alb-e2e", "lsn-e2e1@443", false),
			resource("OSS", "static.example.com", "bucket-e2e", "", false),
			resource("WAF", "www.example.com", "waf_e2e", "", false),
		}
		names := []string{"cdn1.example.com", "cdn2.example.com", "www.example.com", "static.example.com"}
		certA, chA := r.upload("a", certstest.Options{DNSNames: names})
		shaA := leafSha(t, chA)
		want := func(sha string) aliState {
			s := maps.Clone(original)
			for _, k := range []string{"cdn cdn1.example.com", "cdn cdn2.example.com", "slb default", "slb sni www.example.com", "alb default", "oss static.example.com", "waf www.example.com"} {
				s[k] = sha
			}
			s["alb additional cdn1.example.com"] = sha // the additional certificate is known by its common name
			return s
		}

		// Deploy through 2 throttlings of CDN, a 503 of SLB and one of OSS.
		f.Fail("BatchSetCdnDomainServerCertificate", "Throttling.User", 2)
		f.Fail("AddDomainExtension", "ServiceUnavailable", 1)
		f.Fail("PutCname", "ServiceUnavailable", 1)
		f.Fail("ModifyDomain", "Throttling.User", 1)
		job1 := r.createJob(jobSpec{name: "aliyun-a", certs: []int64{certA}, resources: resources})
		r.run(job1, "success")
		if got := aliyunState(f); !maps.Equal(got, want(shaA)) {
			t.Fatalf("after the job the account binds\n%v\nwant\n%v", got, want(shaA))
		}
		// The two CDN domains share batch calls (one or two of them).
		if n, m, o := f.Calls("BatchSetCdnDomainServerCertificate"), f.Calls("AddDomainExtension"), f.Calls("PutCname"); n < 3 || n > 4 || m != 2 || o != 2 || f.Calls("ModifyDomain") != 2 {
			t.Errorf("BatchSetCdnDomainServerCertificate answered %d times, AddDomainExtension %d, PutCname %d, ModifyDomain %d; want 3 or 4, 2, 2 and 2 (the faults, then the retries)", n, m, o, f.Calls("ModifyDomain"))
		}
		if n, m := f.Calls("UploadUserCertificate"), f.Calls("UploadServerCertificate"); n != 1 || m != 1 {
			t.Errorf("uploads: %d to CAS, %d to SLB; want one each", n, m)
		}

		// The same job again: everything is already deployed.
		before := writes(f)
		job1b := r.createJob(jobSpec{name: "aliyun-a-again", certs: []int64{certA}, resources: resources})
		r.run(job1b, "success")
		if n := writes(f) - before; n != 0 {
			t.Errorf("the same job again made %d write calls, want none: %v", n, f.AllCalls())
		}

		// A second certificate, then the cleanup that follows a job: the
		// previous upload stays for rollback, theirs are never deleted.
		certB, chB := r.upload("b", certstest.Options{DNSNames: names})
		shaB := leafSha(t, chB)
		job2 := r.createJob(jobSpec{name: "aliyun-b", certs: []int64{certB}, resources: resources})
		r.run(job2, "success")
		if got := aliyunState(f); !maps.Equal(got, want(shaB)) {
			t.Fatalf("after the second job the account binds\n%v\nwant\n%v", got, want(shaB))
		}
		sweep := deploy.Target{AccountID: 1, CloudName: "aliyun", CloudProduct: "CDN", Access: &deploy.Access{ID: access, CloudName: "aliyun",
			SecretID: aliAK, SecretKey: aliSecret, Config: []byte(jsonConfig(map[string]any{"Endpoints": map[string]string{"*": f.URL()}}))}}
		hub := aliyun.NewHub(aliyun.Options{})
		d := cdn.New(hub)
		alb.New(hub) // registers ALB's and OSS's bindings, as the registry does
		oss.New(hub)
		waf.New(hub)
		if err := d.Sweep(t.Context(), sweep); err != nil {
			t.Fatalf("sweep: %v", err)
		}
		var kept []string
		for _, c := range f.CAS() {
			kept = append(kept, c.Sha2)
		}
		for _, sha := range []string{shaA, shaB, f.CASSha2(theirCAS), f.CASSha2(otherCAS)} {
			if !slices.Contains(kept, sha) {
				t.Errorf("the cleanup deleted %s; CAS holds %v", sha, kept)
			}
		}

		// Roll the second job back, then the first: the account is as it was.
		rollbackAll := func(job int64) {
			n := len(resources)
			r.own("RollbackDeploymentJob", map[string]string{"JobId": strconv.FormatInt(job, 10)})
			waitFor(t, 60*time.Second, fmt.Sprintf("job %d's rollbacks to end", job), func() (bool, error) {
				s := r.counts(job)
				return int(tea.Int32Value(s.RollbackSuccessCount)+tea.Int32Value(s.RollbackFailedCount)) == n, nil
			})
			if s := r.counts(job); int(tea.Int32Value(s.RollbackSuccessCount)) != n {
				t.Fatalf("job %d rollbacks: %+v; workers %+v", job, s, r.workers(job))
			}
		}
		rollbackAll(job2)
		if got := aliyunState(f); !maps.Equal(got, want(shaA)) {
			t.Fatalf("after rolling back the second job the account binds\n%v\nwant\n%v", got, want(shaA))
		}
		rollbackAll(job1)
		if got := aliyunState(f); !maps.Equal(got, original) {
			t.Fatalf("after rolling back the first job the account binds\n%v\nwant what it bound before\n%v", got, original)
		}
	})
}

// TestAliyunDiscovery: SyncCloudResources finds the fake account's CDN
// domains, SLB listeners (default and SNI), ALB listeners (default and
// additional), OSS custom domains and WAF domains, ListCloudResources shows them with the certfleet certificate
// bound, and a second sync changes nothing.
func TestAliyunDiscovery(t *testing.T) {
	skipShort(t)
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		t.Parallel()
		f := aliyunfake.New(aliAK, aliSecret)
		t.Cleanup(f.Close)
		r := newJobRig(t, engine, "--egress-allow", "127.0.0.1/32")
		certA, chA := r.upload("a", certstest.Options{DNSNames: []string{"cdn1.example.com", "www.example.com", "static.example.com"}})
		// The account holds certfleet's certificate A (uploaded by someone)
		// and one certfleet does not know.
		casA := f.AddCASCert("someone-a", chA.CertPEM)
		theirs := deploytest.Bundle(t, "other.example.com")
		theirCAS := f.AddCASCert("theirs", theirs.FullChainPEM)
		f.AddCDNDomain("cdn1.example.com", casA)
		f.AddCDNDomain("cdn2.example.com", theirCAS)
		f.AddCDNDomain("plain.example.com", 0)
		slbA := f.AddSLBCert(aliRegion, "certfleet-"+strings.ToLower(leafSha(t, chA)), chA.CertPEM)
		f.AddLoadBalancer(aliRegion, "lb-disc", slbA, 443)
		f.AddDomainExtension("lb-disc", 443, "other.example.com", f.AddSLBCert(aliRegion, "theirs", theirs.FullChainPEM))
		f.AddALBListener(aliRegion, "alb-disc", "lsn-disc", 443, aliyunfake.ALBCertID(casA), aliyunfake.ALBCertID(theirCAS))
		f.AddBucket(aliRegion, "bucket-disc", aliyunfake.ALBCertID(casA), "static.example.com")
		f.AddWAFInstance(aliRegion, "waf_disc")
		f.AddWAFDomain("waf_disc", wafDomain("www.example.com", casA))
		f.AddWAFDomain("waf_disc", wafDomain("other.example.com", theirCAS))
		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "aliyun", "Name": "fake account",
			"SecretId": aliAK, "SecretKey": aliSecret,
			"Config": jsonConfig(map[string]any{"Endpoints": map[string]string{"*": f.URL()}, "MaxQPS": 200})}), "AccessId")
		sync := func() map[string]any {
			return r.own("SyncCloudResources", map[string]string{"AccessId": strconv.FormatInt(access, 10)})
		}
		// 3 CDN domains, SLB default + 1 SNI, ALB default + 1 additional,
		// 1 OSS custom domain, 2 WAF domains.
		first := sync()
		if fmt.Sprint(first["Found"]) != "10" || fmt.Sprint(first["Created"]) != "10" {
			t.Fatalf("first sync: %v, want 10 found and created", first)
		}
		second := sync()
		if fmt.Sprint(second["Found"]) != "10" || fmt.Sprint(second["Created"]) != "0" || fmt.Sprint(second["Updated"]) != "0" || fmt.Sprint(second["Gone"]) != "0" {
			t.Errorf("second sync: %v, want 10 found and nothing changed", second)
		}
		list, err := r.c.ListCloudResources(&cas.ListCloudResourcesRequest{CloudName: tea.String("aliyun"), ShowSize: tea.Int32(100)})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		for _, d := range list.Body.Data {
			key := tea.StringValue(d.CloudProduct) + " " + tea.StringValue(d.Domain) + " " + tea.StringValue(d.InstanceId)
			got[key] = tea.Int64Value(d.CertId)
		}
		want := map[string]int64{
			"CDN cdn1.example.com ": certA, "CDN cdn2.example.com ": 0, "CDN plain.example.com ": 0,
			"SLB  lb-disc": certA, "SLB other.example.com lb-disc": 0,
			"ALB  alb-disc": certA, "ALB other.example.com alb-disc": 0,
			"OSS static.example.com bucket-disc": certA,
			"WAF www.example.com waf_disc":       certA, "WAF other.example.com waf_disc": 0,
		}
		if !maps.Equal(got, want) {
			t.Errorf("ListCloudResources (product domain instance → CertId):\n%v\nwant\n%v", got, want)
		}
	})
}
