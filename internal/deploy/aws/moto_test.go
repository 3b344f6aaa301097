package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/moto"
)

// The tests run against moto_server (the AWS emulator), started once per
// test binary on a free loopback port.

const (
	testKeyID  = "AKIACERTFLEETTEST01"
	testSecret = "certfleet-test-secret-access-key-0123456789"
)

var (
	motoOnce sync.Once
	motoSrv  *moto.Server
	motoErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if motoSrv != nil {
		motoSrv.Stop()
	}
	os.Exit(code)
}

// startMoto returns the URL of the test binary's shared moto_server,
// skipping under -short and when moto_server is missing (failing in CI).
func startMoto(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs moto_server; skipped under -short")
	}
	if _, err := exec.LookPath("moto_server"); err != nil {
		testutil.Missing(t, "moto_server (the AWS emulator)", `pip install "moto[server]==`+moto.Version+`" (.ci/run installs it)`)
	}
	motoOnce.Do(func() { motoSrv, motoErr = moto.Launch() })
	if motoErr != nil {
		t.Fatalf("start moto_server: %v", motoErr)
	}
	return motoSrv.URL
}

// testAccess is a CloudAccess whose endpoints all point at url.
func testAccess(url string) *deploy.Access {
	cfg, _ := json.Marshal(map[string]any{"Endpoints": map[string]string{"*": url}, "Regions": []string{"us-east-1", "eu-west-1"}, "MaxQPS": 1000})
	return &deploy.Access{ID: 9, CloudName: CloudName, SecretID: testKeyID, SecretKey: testSecret, Config: cfg}
}

var nextResource atomic.Int64

// world is the test's direct view of moto, through the SDK, for creating
// load balancers and distributions and reading what they serve.
type world struct {
	t    *testing.T
	url  string
	acm  map[string]*acm.Client
	elb  map[string]*elb.Client
	cf   *cloudfront.Client
	http *http.Client
}

func newWorld(t *testing.T) *world {
	u := startMoto(t)
	w := &world{t: t, url: u, acm: map[string]*acm.Client{}, elb: map[string]*elb.Client{}, http: &http.Client{Timeout: 180 * time.Second}}
	for _, r := range []string{"us-east-1", "eu-west-1"} {
		cfg := w.cfg(r)
		w.acm[r] = acm.NewFromConfig(cfg, func(o *acm.Options) { o.BaseEndpoint = sdk.String(u) })
		w.elb[r] = elb.NewFromConfig(cfg, func(o *elb.Options) { o.BaseEndpoint = sdk.String(u) })
	}
	w.cf = cloudfront.NewFromConfig(w.cfg("us-east-1"), func(o *cloudfront.Options) { o.BaseEndpoint = sdk.String(u) })
	return w
}

func (w *world) cfg(region string) sdk.Config {
	return sdk.Config{Region: region, Credentials: sdk.CredentialsProviderFunc(func(context.Context) (sdk.Credentials, error) {
		return sdk.Credentials{AccessKeyID: testKeyID, SecretAccessKey: testSecret}, nil
	})}
}

// importCert imports a fresh certificate for name, untagged (a user's own).
func (w *world) importCert(region, name string) string {
	w.t.Helper()
	b := deploytest.Bundle(w.t, name)
	out, err := w.acm[region].ImportCertificate(context.Background(), &acm.ImportCertificateInput{
		Certificate: []byte(b.CertPEM), PrivateKey: []byte(b.KeyPEM), CertificateChain: []byte(b.ChainPEM)})
	if err != nil {
		w.t.Fatalf("moto ImportCertificate: %v", err)
	}
	return *out.CertificateArn
}

func (w *world) sha(region, arn string) string {
	w.t.Helper()
	out, err := w.acm[region].GetCertificate(context.Background(), &acm.GetCertificateInput{CertificateArn: sdk.String(arn)})
	if err != nil {
		w.t.Fatalf("moto GetCertificate %s: %v", arn, err)
	}
	return pemSha(sdk.ToString(out.Certificate))
}

func pemSha(p string) string {
	blk := pemBlock(p)
	sum := sha256.Sum256(blk)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

var subnetRE = regexp.MustCompile(`<subnetId>(subnet-[0-9a-f]+)</subnetId>`)

// subnets returns two default subnets of region through a signed EC2
// Query call (certfleet links no EC2 client).
func (w *world) subnets(region string) []string {
	w.t.Helper()
	body := "Action=DescribeSubnets&Version=2016-11-15"
	req, _ := http.NewRequest("POST", w.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	creds, _ := w.cfg(region).Credentials.Retrieve(context.Background())
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "ec2", region, time.Now()); err != nil {
		w.t.Fatal(err)
	}
	resp, err := w.http.Do(req)
	if err != nil {
		w.t.Fatalf("moto DescribeSubnets: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var ids []string
	for _, m := range subnetRE.FindAllStringSubmatch(string(b), -1) {
		ids = append(ids, m[1])
	}
	if len(ids) < 2 {
		w.t.Fatalf("moto DescribeSubnets in %s: want 2 default subnets, got %s", region, b)
	}
	return ids[:2]
}

// listener creates an ALB with an HTTPS listener whose default
// certificate is defaultArn, plus the additional certificates given.
func (w *world) listener(region, defaultArn string, additional ...string) string {
	w.t.Helper()
	ctx := context.Background()
	n := nextResource.Add(1)
	lb, err := w.elb[region].CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: sdk.String(fmt.Sprintf("lb-%d-%d", os.Getpid()%1000, n)), Subnets: w.subnets(region)})
	if err != nil {
		w.t.Fatalf("moto CreateLoadBalancer: %v", err)
	}
	tg, err := w.elb[region].CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: sdk.String(fmt.Sprintf("tg-%d-%d", os.Getpid()%1000, n)),
		Protocol: elbtypes.ProtocolEnumHttp, Port: sdk.Int32(80), VpcId: lb.LoadBalancers[0].VpcId})
	if err != nil {
		w.t.Fatalf("moto CreateTargetGroup: %v", err)
	}
	l, err := w.elb[region].CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn,
		Protocol: elbtypes.ProtocolEnumHttps, Port: sdk.Int32(443), Certificates: []elbtypes.Certificate{{CertificateArn: sdk.String(defaultArn)}},
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}}})
	if err != nil {
		w.t.Fatalf("moto CreateListener: %v", err)
	}
	arn := *l.Listeners[0].ListenerArn
	if len(additional) > 0 {
		if _, err := w.elb[region].AddListenerCertificates(ctx, &elb.AddListenerCertificatesInput{ListenerArn: sdk.String(arn), Certificates: certList(additional)}); err != nil {
			w.t.Fatalf("moto AddListenerCertificates: %v", err)
		}
	}
	return arn
}

// listenerCerts returns the listener's default and additional ARNs.
func (w *world) listenerCerts(region, arn string) (string, []string) {
	w.t.Helper()
	out, err := w.elb[region].DescribeListenerCertificates(context.Background(), &elb.DescribeListenerCertificatesInput{ListenerArn: sdk.String(arn)})
	if err != nil {
		w.t.Fatalf("moto DescribeListenerCertificates: %v", err)
	}
	def, add := "", []string{}
	for _, c := range out.Certificates {
		if sdk.ToBool(c.IsDefault) {
			def = *c.CertificateArn
		} else {
			add = append(add, *c.CertificateArn)
		}
	}
	return def, add
}

// distribution creates a distribution using CloudFront's default certificate.
func (w *world) distribution(alias string) string {
	w.t.Helper()
	ref := fmt.Sprintf("ref-%d-%d", time.Now().UnixNano(), nextResource.Add(1))
	out, err := w.cf.CreateDistribution(context.Background(), &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: sdk.String(ref), Comment: sdk.String("certfleet test"), Enabled: sdk.Bool(true),
		Aliases: &cftypes.Aliases{Quantity: sdk.Int32(1), Items: []string{alias}},
		Origins: &cftypes.Origins{Quantity: sdk.Int32(1), Items: []cftypes.Origin{{Id: sdk.String("o1"), DomainName: sdk.String("origin.example.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: sdk.Int32(80), HTTPSPort: sdk.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly}}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: sdk.String("o1"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps},
		ViewerCertificate:    &cftypes.ViewerCertificate{CloudFrontDefaultCertificate: sdk.Bool(true)},
	}})
	if err != nil {
		w.t.Fatalf("moto CreateDistribution: %v", err)
	}
	return *out.Distribution.Id
}

func (w *world) viewerCert(id string) *cftypes.ViewerCertificate {
	w.t.Helper()
	out, err := w.cf.GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: sdk.String(id)})
	if err != nil {
		w.t.Fatalf("moto GetDistributionConfig: %v", err)
	}
	return out.DistributionConfig.ViewerCertificate
}

// tagged reports whether arn carries certfleet's import tag.
func (w *world) tagged(region, arn string) bool {
	out, err := w.acm[region].ListTagsForCertificate(context.Background(), &acm.ListTagsForCertificateInput{CertificateArn: sdk.String(arn)})
	if err != nil {
		return false
	}
	for _, tg := range out.Tags {
		if *tg.Key == tagSha256 {
			return true
		}
	}
	return false
}

// imports counts certfleet's shared imports of sha in region.
func (w *world) imports(region, sha string) int {
	w.t.Helper()
	out, err := w.acm[region].ListCertificates(context.Background(), &acm.ListCertificatesInput{Includes: &acmtypes.Filters{KeyTypes: acmtypes.KeyAlgorithm("").Values()}})
	if err != nil {
		w.t.Fatal(err)
	}
	n := 0
	for _, c := range out.CertificateSummaryList {
		if w.tagged(region, *c.CertificateArn) && w.sha(region, *c.CertificateArn) == sha {
			n++
		}
	}
	return n
}

func target(product string, access *deploy.Access, domain string, cfg map[string]any) deploy.Target {
	b, _ := json.Marshal(cfg)
	return deploy.Target{AccountID: 1, ResourceID: 1000 + nextResource.Add(1), CloudName: CloudName, CloudProduct: product,
		Domain: domain, Config: b, Access: access}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }
