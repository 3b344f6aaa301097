package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
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

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil/moto"
)

const (
	awsKeyID  = "AKIACERTFLEETE2E0001"
	awsSecret = "certfleet-e2e-aws-secret-access-key-0001"
)

// awsWorld is the test's own view of moto, through the AWS SDK.
type awsWorld struct {
	t   *testing.T
	url string
	acm *acm.Client
	elb *elb.Client
	cf  *cloudfront.Client
}

func newAWSWorld(t *testing.T) *awsWorld {
	m := moto.Start(t)
	cfg := sdk.Config{Region: "us-east-1", Credentials: sdk.CredentialsProviderFunc(func(context.Context) (sdk.Credentials, error) {
		return sdk.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret}, nil
	})}
	return &awsWorld{t: t, url: m.URL,
		acm: acm.NewFromConfig(cfg, func(o *acm.Options) { o.BaseEndpoint = sdk.String(m.URL) }),
		elb: elb.NewFromConfig(cfg, func(o *elb.Options) { o.BaseEndpoint = sdk.String(m.URL) }),
		cf:  cloudfront.NewFromConfig(cfg, func(o *cloudfront.Options) { o.BaseEndpoint = sdk.String(m.URL) })}
}

var bg = context.Background()

func (w *awsWorld) importCert(ch certstest.Chain) string {
	w.t.Helper()
	out, err := w.acm.ImportCertificate(bg, &acm.ImportCertificateInput{Certificate: []byte(ch.LeafPEM), PrivateKey: []byte(ch.KeyPEM),
		CertificateChain: []byte(ch.IntermediatePEM)})
	if err != nil {
		w.t.Fatalf("moto ImportCertificate: %v", err)
	}
	return *out.CertificateArn
}

// sha is the fingerprint of an ACM certificate, "" when ACM has none.
func (w *awsWorld) sha(arn string) string {
	out, err := w.acm.GetCertificate(bg, &acm.GetCertificateInput{CertificateArn: sdk.String(arn)})
	if err != nil {
		return ""
	}
	blk, _ := pem.Decode([]byte(sdk.ToString(out.Certificate)))
	sum := sha256.Sum256(blk.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

var e2eSubnetRE = regexp.MustCompile(`<subnetId>(subnet-[0-9a-f]+)</subnetId>`)

func (w *awsWorld) listener(defaultArn string) string {
	w.t.Helper()
	body := "Action=DescribeSubnets&Version=2016-11-15"
	req, _ := http.NewRequest("POST", w.url+"/", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	sum := sha256.Sum256([]byte(body))
	v4.NewSigner().SignHTTP(bg, sdk.Credentials{AccessKeyID: awsKeyID, SecretAccessKey: awsSecret}, req, hex.EncodeToString(sum[:]), "ec2", "us-east-1", time.Now())
	resp, err := (&http.Client{Timeout: 3 * time.Minute}).Do(req)
	if err != nil {
		w.t.Fatalf("moto DescribeSubnets: %v", err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var subnets []string
	for _, m := range e2eSubnetRE.FindAllStringSubmatch(string(b), 2) {
		subnets = append(subnets, m[1])
	}
	lb, err := w.elb.CreateLoadBalancer(bg, &elb.CreateLoadBalancerInput{Name: sdk.String("e2e-lb"), Subnets: subnets})
	if err != nil {
		w.t.Fatalf("moto CreateLoadBalancer: %v", err)
	}
	tg, err := w.elb.CreateTargetGroup(bg, &elb.CreateTargetGroupInput{Name: sdk.String("e2e-tg"), Protocol: elbtypes.ProtocolEnumHttp,
		Port: sdk.Int32(80), VpcId: lb.LoadBalancers[0].VpcId})
	if err != nil {
		w.t.Fatalf("moto CreateTargetGroup: %v", err)
	}
	l, err := w.elb.CreateListener(bg, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttps,
		Port: sdk.Int32(443), Certificates: []elbtypes.Certificate{{CertificateArn: sdk.String(defaultArn)}},
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}}})
	if err != nil {
		w.t.Fatalf("moto CreateListener: %v", err)
	}
	return *l.Listeners[0].ListenerArn
}

func (w *awsWorld) defaultCert(listener string) string {
	w.t.Helper()
	out, err := w.elb.DescribeListeners(bg, &elb.DescribeListenersInput{ListenerArns: []string{listener}})
	if err != nil || len(out.Listeners) == 0 || len(out.Listeners[0].Certificates) == 0 {
		w.t.Fatalf("moto DescribeListeners: %v", err)
	}
	return *out.Listeners[0].Certificates[0].CertificateArn
}

func (w *awsWorld) distribution(alias string) string {
	w.t.Helper()
	out, err := w.cf.CreateDistribution(bg, &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: sdk.String("e2e-" + alias), Comment: sdk.String("e2e"), Enabled: sdk.Bool(true),
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

func (w *awsWorld) viewerCert(id string) *cftypes.ViewerCertificate {
	w.t.Helper()
	out, err := w.cf.GetDistributionConfig(bg, &cloudfront.GetDistributionConfigInput{Id: sdk.String(id)})
	if err != nil {
		w.t.Fatalf("moto GetDistributionConfig: %v", err)
	}
	return out.DistributionConfig.ViewerCertificate
}

// certs returns every ACM certificate's fingerprint, by ARN, and which are
// tagged key.
func (w *awsWorld) certs(key string) (all map[string]string, tagged map[string]bool) {
	w.t.Helper()
	out, err := w.acm.ListCertificates(bg, &acm.ListCertificatesInput{Includes: &acmtypes.Filters{KeyTypes: acmtypes.KeyAlgorithm("").Values()}})
	if err != nil {
		w.t.Fatal(err)
	}
	all, tagged = map[string]string{}, map[string]bool{}
	for _, c := range out.CertificateSummaryList {
		arn := *c.CertificateArn
		all[arn] = w.sha(arn)
		tags, _ := w.acm.ListTagsForCertificate(bg, &acm.ListTagsForCertificateInput{CertificateArn: c.CertificateArn})
		for _, tg := range tags.Tags {
			if *tg.Key == key {
				tagged[arn] = true
			}
		}
	}
	return all, tagged
}

// TestAWSTargets: through the official CAS SDK against moto, a credential
// is synced (the listener, the distribution and the user's own ACM
// certificate are discovered), one job deploys to the listener's default
// certificate, the distribution and a certfleet-owned ACM ARN — importing
// the certificate once for the two that share us-east-1 — and reads back;
// a second job changes nothing; a rollback restores every binding.
func TestAWSTargets(t *testing.T) {
	forEachEngine(t, func(t *testing.T, engine string) {
		w := newAWSWorld(t)
		old := certstest.New(t, certstest.Options{DNSNames: []string{"lb.example.com"}})
		oldArn := w.importCert(old)
		listener := w.listener(oldArn)
		dist := w.distribution("cf.example.com")
		r := newJobRig(t, engine)

		access := idOf(t, r.own("CreateCloudAccess", map[string]string{"CloudName": "aws", "Name": "aws-e2e",
			"SecretId": awsKeyID, "SecretKey": awsSecret,
			"Config": jsonConfig(map[string]any{"Endpoints": map[string]string{"*": w.url}, "Regions": []string{"us-east-1"}, "MaxQPS": 1000})}), "AccessId")
		if got := r.sync(access); got != "found=3 created=3 updated=0 gone=0" {
			t.Fatalf("first sync: %s", got)
		}
		if got := r.sync(access); got != "found=3 created=0 updated=0 gone=0" {
			t.Errorf("second sync: %s, want nothing changed", got)
		}
		res := r.cloudResources("aws")
		lb, cf := res["ELB lb.example.com"], res["CLOUDFRONT cf.example.com"]
		if lb == nil || cf == nil || res["ACM lb.example.com"] == nil {
			t.Fatalf("discovery made %v; want the listener, the distribution and the imported certificate", res)
		}
		if tea := lb.DefaultResource; tea == nil || *tea != 1 {
			t.Errorf("the listener's row: DefaultResource %v, want 1", tea)
		}
		acmRes := idOf(t, r.own("CreateCloudResource", map[string]string{"CloudName": "aws", "CloudProduct": "ACM", "Domain": "acm.example.com",
			"Name": "acm-e2e", "CloudAccessId": strconv.FormatInt(access, 10), "Config": jsonConfig(map[string]any{"RegionId": "us-east-1"})}), "Id")
		ids := []int64{*lb.Id, *cf.Id, acmRes}

		cert, ch := r.upload("aws-e2e", certstest.Options{DNSNames: []string{"lb.example.com", "cf.example.com", "acm.example.com"}})
		sha := shaOf(ch)
		job := r.createJob(jobSpec{certs: []int64{cert}, resources: ids})
		r.run(job, "success")

		owned := func() string { // the ARN certfleet created for the ACM resource
			_, tagged := w.certs("certfleet:resource")
			for arn := range tagged {
				return arn
			}
			return ""
		}
		if got := w.sha(w.defaultCert(listener)); got != sha {
			t.Errorf("the listener's default certificate is %s, want the deployed one", got)
		}
		if vc := w.viewerCert(dist); vc.ACMCertificateArn == nil || w.sha(*vc.ACMCertificateArn) != sha || sdk.ToBool(vc.CloudFrontDefaultCertificate) {
			t.Errorf("the distribution's viewer certificate is %+v, want the deployed one", vc)
		}
		if arn := owned(); arn == "" || w.sha(arn) != sha {
			t.Errorf("the ACM resource's ARN %q does not hold the deployed certificate", arn)
		}
		countImports := func() int {
			all, tagged := w.certs("certfleet:sha256")
			n := 0
			for arn := range tagged {
				if all[arn] == sha {
					n++
				}
			}
			return n
		}
		if n := countImports(); n != 1 {
			t.Errorf("%d shared imports of the certificate in us-east-1, want 1 for the listener and the distribution", n)
		}
		// The engine sweeps once per product and credential; ELB's and
		// CLOUDFRONT's find the import bound and delete nothing of the user's.
		r.srv.waitLog(2, `"msg":"cleanup after job done"`)
		if n := r.srv.logCount(`"msg":"cleanup after job failed"`); n != 0 {
			t.Errorf("%d cleanups failed: %s", n, r.srv.Logs())
		}
		if w.sha(oldArn) == "" || countImports() != 1 {
			t.Errorf("the cleanup deleted the user's certificate or the bound import")
		}

		again := r.createJob(jobSpec{certs: []int64{cert}, resources: ids})
		r.run(again, "success")
		if n := countImports(); n != 1 {
			t.Errorf("after the second job: %d shared imports, want 1", n)
		}

		body := r.own("RollbackDeploymentJob", map[string]string{"JobId": strconv.FormatInt(job, 10)})
		if fmt.Sprint(body["WorkerCount"]) != "3" {
			t.Fatalf("RollbackDeploymentJob answered %v, want WorkerCount 3", body)
		}
		for _, id := range ids {
			wk := r.worker(job, id)
			waitFor(t, time.Minute, fmt.Sprintf("worker %d to end its rollback", wk.ID), func() (bool, error) {
				wk = r.worker(job, id)
				return wk.Status == "rollback_success" || wk.Status == "rollback_error", nil
			})
			if wk.Status != "rollback_success" {
				t.Errorf("worker for resource %d: %s (%s)", id, wk.Status, wk.ErrorMessage)
			}
		}
		if got := w.defaultCert(listener); got != oldArn {
			t.Errorf("after the rollback the listener's default is %s, want %s", got, oldArn)
		}
		if vc := w.viewerCert(dist); !sdk.ToBool(vc.CloudFrontDefaultCertificate) || sdk.ToString(vc.ACMCertificateArn) != "" {
			t.Errorf("after the rollback the distribution's viewer certificate is %+v, want CloudFront's default", vc)
		}
		if arn := owned(); arn != "" {
			t.Errorf("after the rollback the ARN certfleet created (%s) is still there", arn)
		}
	})
}
