package aws

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

func pemBlock(p string) []byte {
	blk, _ := pem.Decode([]byte(p))
	if blk == nil {
		return nil
	}
	return blk.Bytes
}

func TestSchemas(t *testing.T) {
	deploytest.CheckSchema(t, ACMDescription.Config, ACMConfig{})
	deploytest.CheckSchema(t, CloudFrontDescription.Config, CloudFrontConfig{})
	deploytest.CheckSchema(t, ELBDescription.Config, ELBConfig{})
	deploytest.CheckSchema(t, accessFields, AccessConfig{})
}

// refusing is a target whose endpoint answers every call with AccessDenied.
func refusing(t *testing.T, product string, cfg map[string]any) deploytest.Failing {
	return deploytest.Failing{Desc: "an endpoint answering AccessDenied", Target: func(t *testing.T) deploy.Target {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("x-amzn-RequestId", "req-denied-1")
			if strings.Contains(r.Header.Get("Content-Type"), "json") {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(400)
				w.Write([]byte(`{"__type":"AccessDeniedException","message":"User is not authorized to perform this action"}`))
				return
			}
			w.Header().Set("Content-Type", "text/xml")
			w.WriteHeader(403)
			w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized</Message></Error><RequestId>req-denied-1</RequestId></ErrorResponse>`))
		}))
		t.Cleanup(srv.Close)
		return target(product, testAccess(srv.URL), "www.example.com", cfg)
	}}
}

func TestACMConformance(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewACM(Options{}),
		Target: func(t *testing.T) deploy.Target {
			return target("ACM", access, "www.example.com", map[string]any{"RegionId": "eu-west-1"})
		},
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			d := NewACM(Options{})
			c, s, err := d.open(tgt)
			if err != nil {
				t.Fatal(err)
			}
			info, found, err := d.arn(context.Background(), c, s, tgt)
			if err != nil {
				t.Fatal(err)
			}
			if !found {
				return nil
			}
			return []byte(info.Sha2)
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "a CertificateArn that is not an ACM ARN", Config: json.RawMessage(`{"CertificateArn":"arn:aws:iam::1:server-certificate/x"}`)},
			{Desc: "a RegionId other than the ARN's", Config: json.RawMessage(`{"CertificateArn":"arn:aws:acm:us-east-1:123456789012:certificate/x","RegionId":"eu-west-1"}`)},
			{Desc: "an unknown key", Config: json.RawMessage(`{"Region":"eu-west-1"}`)},
		},
		Failing: []deploytest.Failing{refusing(t, "ACM", map[string]any{})},
	})
}

func TestELBDefaultConformance(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewELB(Options{}),
		Target: func(t *testing.T) deploy.Target {
			l := w.listener("eu-west-1", w.importCert("eu-west-1", "www.example.com"), w.importCert("eu-west-1", "api.example.com"))
			return target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l})
		},
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			c, _ := parseELB(tgt.Config)
			def, add := w.listenerCerts("eu-west-1", c.ListenerArn)
			if len(add) != 1 {
				t.Errorf("listener %s: additional certificates %v; the one SNI certificate must stay", c.ListenerArn, add)
			}
			return []byte(w.sha("eu-west-1", def))
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no ListenerArn", Config: json.RawMessage(`{"DefaultResource":true}`)},
			{Desc: "a load balancer ARN for ListenerArn", Config: json.RawMessage(`{"ListenerArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/app/x/1"}`)},
			{Desc: "a RegionId other than the ARN's", Config: json.RawMessage(`{"ListenerArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2","RegionId":"us-east-1"}`)},
		},
		Failing: []deploytest.Failing{refusing(t, "ELB", map[string]any{"ListenerArn": "arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2"})},
	})
}

func TestELBSNIConformance(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	defaults := map[string]string{}
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewELB(Options{}),
		Target: func(t *testing.T) deploy.Target {
			def := w.importCert("eu-west-1", "default.example.com")
			l := w.listener("eu-west-1", def, w.importCert("eu-west-1", "api.example.com"))
			defaults[l] = def
			return target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l, "DefaultResource": false})
		},
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			c, _ := parseELB(tgt.Config)
			def, add := w.listenerCerts("eu-west-1", c.ListenerArn)
			if def != defaults[c.ListenerArn] {
				t.Errorf("listener %s: the default certificate changed to %s", c.ListenerArn, def)
			}
			var shas []string
			other := 0
			for _, a := range add {
				if w.tagged("eu-west-1", a) {
					shas = append(shas, w.sha("eu-west-1", a))
				} else {
					other++
				}
			}
			if other != 1 {
				t.Errorf("listener %s: %d untagged additional certificates, want the api.example.com one kept", c.ListenerArn, other)
			}
			if len(shas) == 0 {
				return nil
			}
			sort.Strings(shas)
			return []byte(strings.Join(shas, ","))
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "an unknown key", Config: json.RawMessage(`{"ListenerArn":"arn:aws:elasticloadbalancing:eu-west-1:123456789012:listener/app/x/1/2","Sni":true}`)},
		},
	})
}

func TestCloudFrontConformance(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	deploytest.Run(t, deploytest.Harness{
		Deployer: NewCloudFront(Options{}),
		Target: func(t *testing.T) deploy.Target {
			id := w.distribution("www.example.com")
			return target("CLOUDFRONT", access, "www.example.com", map[string]any{"DistributionId": id})
		},
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			var c CloudFrontConfig
			json.Unmarshal(tgt.Config, &c)
			vc := w.viewerCert(c.DistributionId)
			if vc == nil || sdk.ToString(vc.ACMCertificateArn) == "" {
				return nil
			}
			return []byte(w.sha("us-east-1", *vc.ACMCertificateArn))
		},
		BadConfigs: []deploytest.BadConfig{
			{Desc: "no DistributionId", Config: json.RawMessage(`{}`)},
			{Desc: "an unknown TLS policy", Config: json.RawMessage(`{"DistributionId":"E1","MinimumProtocolVersion":"SSLv3"}`)},
		},
		Failing: []deploytest.Failing{refusing(t, "CLOUDFRONT", map[string]any{"DistributionId": "E1"})},
	})
}

// TestUploadOncePerFingerprint: two listeners and a distribution get the
// same bundle; one import per region.
func TestUploadOncePerFingerprint(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	ctx := context.Background()
	b := deploytest.Bundle(t, "www.example.com")
	e := NewELB(Options{})
	for range 2 {
		l := w.listener("eu-west-1", w.importCert("eu-west-1", "old.example.com"))
		tgt := target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l})
		if _, err := e.Deploy(ctx, deploy.Request{Target: tgt, Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh deployer (a restarted server) finds the import by its tag.
	l := w.listener("eu-west-1", w.importCert("eu-west-1", "old.example.com"))
	if _, err := NewELB(Options{}).Deploy(ctx, deploy.Request{Target: target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l}), Bundle: b}); err != nil {
		t.Fatal(err)
	}
	if n := w.imports("eu-west-1", b.Sha2); n != 1 {
		t.Errorf("eu-west-1 holds %d imports of the bundle, want 1", n)
	}
	cf := NewCloudFront(Options{})
	for range 2 {
		tgt := target("CLOUDFRONT", access, "www.example.com", map[string]any{"DistributionId": w.distribution("www.example.com")})
		if _, err := cf.Deploy(ctx, deploy.Request{Target: tgt, Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.imports("us-east-1", b.Sha2); n != 1 {
		t.Errorf("us-east-1 holds %d imports of the bundle, want 1", n)
	}

	// A listener and a distribution in us-east-1 deployed at once by the
	// products of one server share the import.
	c := deploytest.Bundle(t, "www.example.com")
	p := New(Options{})
	errs := make(chan error, 2)
	l2 := w.listener("us-east-1", w.importCert("us-east-1", "old.example.com"))
	lt := target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l2})
	ct := target("CLOUDFRONT", access, "www.example.com", map[string]any{"DistributionId": w.distribution("www.example.com")})
	go func() { _, err := p.ELB.Deploy(ctx, deploy.Request{Target: lt, Bundle: c}); errs <- err }()
	go func() { _, err := p.CloudFront.Deploy(ctx, deploy.Request{Target: ct, Bundle: c}); errs <- err }()
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if n := w.imports("us-east-1", c.Sha2); n != 1 {
		t.Errorf("after concurrent deployments us-east-1 holds %d imports, want 1", n)
	}
}

// TestSNIReplacesOnlyWhatItCovers: an SNI deployment replaces the older
// certificate for the same names and leaves a wildcard serving others.
func TestSNIReplacesOnlyWhatItCovers(t *testing.T) {
	w := newWorld(t)
	access := testAccess(w.url)
	ctx := context.Background()
	wild := w.importCert("eu-west-1", "*.example.com")
	def := w.importCert("eu-west-1", "default.example.com")
	l := w.listener("eu-west-1", def, wild)
	tgt := target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l, "DefaultResource": false})
	e := NewELB(Options{})
	a, b := deploytest.Bundle(t, "www.example.com"), deploytest.Bundle(t, "www.example.com")
	if _, err := e.Deploy(ctx, deploy.Request{Target: tgt, Bundle: a}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Deploy(ctx, deploy.Request{Target: tgt, Bundle: b}); err != nil {
		t.Fatal(err)
	}
	gotDef, add := w.listenerCerts("eu-west-1", l)
	if gotDef != def {
		t.Errorf("default certificate changed to %s", gotDef)
	}
	var shas []string
	for _, x := range add {
		shas = append(shas, w.sha("eu-west-1", x))
	}
	if !slices.Contains(add, wild) || len(add) != 2 || !slices.Contains(shas, b.Sha2) || slices.Contains(shas, a.Sha2) {
		t.Errorf("additional certificates %v: want the wildcard kept, b added, a replaced", add)
	}
}

// TestSweepKeepsWhatRollbackNeeds deploys three bundles in turn to a
// listener and sweeps: the bound one and the newest unused one stay, a
// user's own unused import stays.
func TestSweepKeepsWhatRollbackNeeds(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	// A region of its own, so other tests' imports do not count.
	region := "eu-west-1"
	access := testAccess(w.url)
	users := w.importCert(region, "mine.example.com")
	l := w.listener(region, w.importCert(region, "old.example.com"))
	tgt := target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l, "KeepPrevious": 1})
	e := NewELB(Options{})
	var bundles []deploy.Bundle
	for range 3 {
		b := deploytest.Bundle(t, "www.example.com")
		bundles = append(bundles, b)
		if _, err := e.Deploy(ctx, deploy.Request{Target: tgt, Bundle: b}); err != nil {
			t.Fatal(err)
		}
	}
	_, s, _ := e.open(tgt)
	deleted, err := sweepRegion(ctx, s, 1)
	if err != nil {
		t.Fatal(err)
	}
	if w.imports(region, bundles[0].Sha2) != 0 || w.imports(region, bundles[1].Sha2) != 1 || w.imports(region, bundles[2].Sha2) != 1 {
		t.Errorf("after the sweep (deleted %v): want bundle 0 deleted, 1 kept (KeepPrevious), 2 kept (bound)", deleted)
	}
	if w.sha(region, users) == "" {
		t.Error("the user's own import was deleted")
	}
	// Rollback to the kept one still works.
	if err := e.Rollback(ctx, deploy.Request{Target: tgt, Bundle: bundles[1]}, nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.AlreadyDeployed(ctx, deploy.Request{Target: tgt, Bundle: bundles[1]}); !ok || err != nil {
		t.Errorf("after rolling back to bundle 1: AlreadyDeployed = %v, %v", ok, err)
	}
}

// TestDiscover finds the listeners (default and SNI), distributions and
// imported certificates the test created.
func TestDiscover(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	access := testAccess(w.url)
	def := w.importCert("eu-west-1", "disc-default.example.com")
	sni := w.importCert("eu-west-1", "disc-sni.example.com")
	l := w.listener("eu-west-1", def, sni)
	dist := w.distribution("disc.example.com")
	tgt := deploy.Target{AccountID: 1, CloudName: CloudName, Access: access}

	found, err := NewELB(Options{}).Discover(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	keys := map[string]deploy.Discovered{}
	for _, f := range found {
		keys[f.Key] = f
	}
	d, ok := keys[l+"/default"]
	if !ok || !d.DefaultResource || d.Domain != "disc-default.example.com" || d.CertSha2 != w.sha("eu-west-1", def) || d.RegionID != "eu-west-1" {
		t.Errorf("default binding: got %+v (found %v)", d, ok)
	}
	if err := deploy.Validate(NewELB(Options{}), d.Config, true); err != nil {
		t.Errorf("the discovered Config does not validate: %v", err)
	}
	s, ok := keys[l+"/disc-sni.example.com"]
	if !ok || s.DefaultResource || s.CertSha2 != w.sha("eu-west-1", sni) {
		t.Errorf("SNI binding: got %+v (found %v)", s, ok)
	}

	found, err = NewCloudFront(Options{}).Discover(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	var hit bool
	for _, f := range found {
		if f.Key == dist {
			hit = f.Domain == "disc.example.com"
		}
	}
	if !hit {
		t.Errorf("distribution %s not discovered with its alias: %+v", dist, found)
	}

	found, err = NewACM(Options{}).Discover(ctx, tgt)
	if err != nil {
		t.Fatal(err)
	}
	hit = false
	for _, f := range found {
		if f.Key == sni {
			hit = f.Domain == "disc-sni.example.com" && deploy.Validate(NewACM(Options{}), f.Config, true) == nil
		}
	}
	if !hit {
		t.Errorf("imported certificate %s not discovered", sni)
	}
}

// faulty is a proxy in front of moto that answers the next n calls of
// action with AWS's throttling error, then forwards.
type faulty struct {
	srv   *httptest.Server
	mu    sync.Mutex
	left  map[string]int
	calls map[string]int
}

func newFaulty(t *testing.T, moto string) *faulty {
	f := &faulty{left: map[string]int{}, calls: map[string]int{}}
	proxy := httputil.NewSingleHostReverseProxy(mustURL(moto))
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		action := r.Header.Get("X-Amz-Target") // JSON protocols: "CertificateManager.ImportCertificate"
		if i := strings.LastIndexByte(action, '.'); i >= 0 {
			action = action[i+1:]
		}
		if action == "" {
			q, _ := url.ParseQuery(string(body))
			action = q.Get("Action")
		}
		f.mu.Lock()
		f.calls[action]++
		throttle := f.left[action] > 0
		if throttle {
			f.left[action]--
		}
		f.mu.Unlock()
		if !throttle {
			proxy.ServeHTTP(w, r)
			return
		}
		w.Header().Set("x-amzn-RequestId", "req-throttled-1")
		if strings.Contains(r.Header.Get("Content-Type"), "json") {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(400)
			w.Write([]byte(`{"__type":"ThrottlingException","message":"Rate exceeded"}`))
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(400)
		w.Write([]byte(`<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>req-throttled-1</RequestId></ErrorResponse>`))
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *faulty) throttle(action string, n int) {
	f.mu.Lock()
	f.left[action] = n
	f.mu.Unlock()
}

func (f *faulty) count(action string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[action]
}

// TestThrottling: throttling is retried by the SDK within a call, and when
// it outlasts the attempts the error is transient (the engine retries the
// worker), naming the call, AWS's code and the request ID; an access
// denial is permanent.
func TestThrottling(t *testing.T) {
	w := newWorld(t)
	f := newFaulty(t, w.url)
	access := testAccess(f.srv.URL)
	ctx := context.Background()
	l := w.listener("eu-west-1", w.importCert("eu-west-1", "old.example.com"))
	tgt := target("ELB", access, "www.example.com", map[string]any{"ListenerArn": l})
	b := deploytest.Bundle(t, "www.example.com")

	t0 := time.Now()
	defer func() { t.Logf("took %s", time.Since(t0)) }()
	f.throttle("ModifyListener", 100)
	_, err := NewELB(Options{MaxAttempts: 2}).Deploy(ctx, deploy.Request{Target: tgt, Bundle: b})
	if err == nil || deploy.IsPermanent(err) || !IsThrottling(errors.Unwrap(err)) && !strings.Contains(err.Error(), "Throttling: Rate exceeded (RequestId req-throttled-1)") {
		t.Fatalf("Deploy while ModifyListener is throttled: got %v, want a transient error quoting Throttling and the request ID", err)
	}
	if !strings.Contains(err.Error(), "ELB ModifyListener") {
		t.Errorf("the error does not name the call: %v", err)
	}
	t.Logf("first deploy done at %s", time.Since(t0))
	if n := f.count("ModifyListener"); n != 2 {
		t.Errorf("ModifyListener was tried %d times, want 2 (MaxAttempts)", n)
	}

	f.throttle("ModifyListener", 1)
	f.throttle("ImportCertificate", 1)
	if _, err := NewELB(Options{MaxAttempts: 3}).Deploy(ctx, deploy.Request{Target: tgt, Bundle: b}); err != nil {
		t.Fatalf("Deploy with one throttled answer per call: %v", err)
	}
	if ok, err := NewELB(Options{}).AlreadyDeployed(ctx, deploy.Request{Target: tgt, Bundle: b}); !ok || err != nil {
		t.Errorf("after the retried Deploy: AlreadyDeployed = %v, %v", ok, err)
	}

	t.Logf("second deploy done at %s", time.Since(t0))
	denied := refusing(t, "ELB", map[string]any{"ListenerArn": l}).Target(t)
	_, err = NewELB(Options{}).Deploy(ctx, deploy.Request{Target: denied, Bundle: b})
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "AccessDenied") {
		t.Errorf("Deploy with access denied: got %v, want a permanent error quoting AccessDenied", err)
	}
}

// TestAssumeRole: with RoleArn the products call STS AssumeRole once and
// reuse the session (moto does not check which credential signs, so the
// proxy counts the calls).
func TestAssumeRole(t *testing.T) {
	w := newWorld(t)
	f := newFaulty(t, w.url)
	cfg, _ := json.Marshal(map[string]any{"Endpoints": map[string]string{"*": f.srv.URL}, "MaxQPS": 1000,
		"RoleArn": "arn:aws:iam::123456789012:role/certfleet", "ExternalId": "certfleet-test"})
	access := &deploy.Access{ID: 11, CloudName: CloudName, SecretID: testKeyID, SecretKey: testSecret, Config: cfg}
	d := NewACM(Options{})
	for range 2 {
		tgt := target("ACM", access, "www.example.com", map[string]any{"RegionId": "us-east-1"})
		if _, err := d.Deploy(context.Background(), deploy.Request{Target: tgt, Bundle: deploytest.Bundle(t, "www.example.com")}); err != nil {
			t.Fatal(err)
		}
	}
	if n := f.count("AssumeRole"); n != 1 {
		t.Errorf("AssumeRole called %d times, want 1", n)
	}
	bad, _ := json.Marshal(map[string]any{"RoleArn": "certfleet-role"})
	if _, err := decodeAccess(&deploy.Access{ID: 12, Config: bad}); err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), `"RoleArn"`) {
		t.Errorf("a RoleArn that is not an ARN: got %v", err)
	}
}
