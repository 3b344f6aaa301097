package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/certfleet/certfleet/internal/deploy"
)

// cloudFrontRegion is where CloudFront takes ACM certificates from.
const cloudFrontRegion = "us-east-1"

// CloudFrontDescription is aws/CLOUDFRONT's Description.
var CloudFrontDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "CLOUDFRONT",
	Summary:      "Sets a CloudFront distribution's viewer certificate to an ACM certificate in us-east-1 (SNI), keeping the rest of its configuration.",
	Config: []deploy.Field{
		{Name: "DistributionId", Type: deploy.TypeString, Required: true, Help: "The distribution's ID (E2QWRUHAPOMQZL)."},
		{Name: "MinimumProtocolVersion", Type: deploy.TypeString,
			Allowed: []string{"TLSv1", "TLSv1_2016", "TLSv1.1_2016", "TLSv1.2_2018", "TLSv1.2_2019", "TLSv1.2_2021", "TLSv1.3_2025"},
			Help:    "The viewer TLS policy to set; empty: keep the distribution's, or TLSv1.2_2021 when it used CloudFront's default certificate."},
		keepField,
	},
	Access: accessSpec,
}

// CloudFrontConfig is an aws/CLOUDFRONT resource's Config.
type CloudFrontConfig struct {
	DistributionId         string
	MinimumProtocolVersion string
	KeepPrevious           *int
}

// CloudFront deploys to CloudFront distributions. It is safe for concurrent use.
type CloudFront struct{ b *base }

var (
	_ deploy.Product     = (*CloudFront)(nil)
	_ deploy.Rollbacker  = (*CloudFront)(nil)
	_ deploy.Snapshotter = (*CloudFront)(nil)
	_ deploy.Checker     = (*CloudFront)(nil)
	_ deploy.Discoverer  = (*CloudFront)(nil)
	_ deploy.Sweeper     = (*CloudFront)(nil)
)

// NewCloudFront returns the aws/CLOUDFRONT product.
func NewCloudFront(o Options) *CloudFront { return &CloudFront{b: newBase(o)} }

// Describe returns CloudFrontDescription.
func (d *CloudFront) Describe() deploy.Description { return CloudFrontDescription }

func (d *CloudFront) open(t deploy.Target) (CloudFrontConfig, *session, error) {
	var c CloudFrontConfig
	if err := CloudFrontDescription.DecodeConfig(t.Config, &c); err != nil {
		return c, nil, err
	}
	s, err := d.b.session(t, "CLOUDFRONT", cloudFrontRegion)
	return c, s, err
}

// cfSnapshot is the distribution's viewer certificate before the change,
// as CloudFront returned it.
type cfSnapshot struct {
	ViewerCertificate *cftypes.ViewerCertificate
}

func (s *session) distConfig(ctx context.Context, id string) (*cftypes.DistributionConfig, string, error) {
	out, err := s.cf.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: sdk.String(id)})
	if err != nil {
		return nil, "", classify(err, "CloudFront GetDistributionConfig "+id)
	}
	if out.DistributionConfig == nil {
		return nil, "", fmt.Errorf("aws: CloudFront GetDistributionConfig %s: no DistributionConfig in the answer", id)
	}
	return out.DistributionConfig, sdk.ToString(out.ETag), nil
}

func (s *session) putViewerCert(ctx context.Context, id string, vc *cftypes.ViewerCertificate) error {
	dc, etag, err := s.distConfig(ctx, id)
	if err != nil {
		return err
	}
	dc.ViewerCertificate = vc
	_, err = s.cf.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: sdk.String(id), IfMatch: sdk.String(etag), DistributionConfig: dc})
	return classify(err, "CloudFront UpdateDistribution "+id)
}

// Snapshot records the distribution's viewer certificate.
func (d *CloudFront) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	dc, _, err := s.distConfig(ctx, c.DistributionId)
	if err != nil {
		return nil, err
	}
	return json.Marshal(cfSnapshot{ViewerCertificate: dc.ViewerCertificate})
}

// AlreadyDeployed reports whether the distribution's viewer certificate is
// an ACM certificate holding the bundle.
func (d *CloudFront) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return false, err
	}
	sha, err := s.cfServing(ctx, c.DistributionId)
	return err == nil && sha != "" && sha == strings.ToUpper(req.Bundle.Sha2), err
}

// cfServing is the SHA-256 of the distribution's ACM certificate, "" when
// it uses CloudFront's default or an IAM certificate.
func (s *session) cfServing(ctx context.Context, id string) (string, error) {
	dc, _, err := s.distConfig(ctx, id)
	if err != nil {
		return "", err
	}
	vc := dc.ViewerCertificate
	if vc == nil || sdk.ToString(vc.ACMCertificateArn) == "" {
		return "", nil
	}
	info, _, err := s.describeCert(ctx, *vc.ACMCertificateArn)
	return info.Sha2, err
}

// Deploy imports the bundle into ACM in us-east-1 (once per fingerprint)
// and sets it as the distribution's viewer certificate (SNI), changing
// nothing else of the distribution's configuration; then reads it back.
func (d *CloudFront) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := pemParts(s.product, req.Bundle); err != nil {
		return nil, err
	}
	dc, _, err := s.distConfig(ctx, c.DistributionId)
	if err != nil {
		return nil, err
	}
	prev, _ := json.Marshal(cfSnapshot{ViewerCertificate: dc.ViewerCertificate})
	arn, err := s.ensureImported(ctx, req.Bundle)
	if err != nil {
		return nil, err
	}
	vc := &cftypes.ViewerCertificate{ACMCertificateArn: sdk.String(arn), CloudFrontDefaultCertificate: sdk.Bool(false),
		SSLSupportMethod: cftypes.SSLSupportMethodSniOnly, MinimumProtocolVersion: cftypes.MinimumProtocolVersionTLSv122021}
	if old := dc.ViewerCertificate; old != nil && !sdk.ToBool(old.CloudFrontDefaultCertificate) && old.MinimumProtocolVersion != "" {
		vc.MinimumProtocolVersion = old.MinimumProtocolVersion
		if old.SSLSupportMethod != "" {
			vc.SSLSupportMethod = old.SSLSupportMethod
		}
	}
	if c.MinimumProtocolVersion != "" {
		vc.MinimumProtocolVersion = cftypes.MinimumProtocolVersion(c.MinimumProtocolVersion)
	}
	if err := s.putViewerCert(ctx, c.DistributionId, vc); err != nil {
		return prev, err
	}
	sha, err := s.cfServing(ctx, c.DistributionId)
	if err != nil {
		return prev, err
	}
	if sha != strings.ToUpper(req.Bundle.Sha2) {
		return prev, fmt.Errorf("aws/CLOUDFRONT: distribution %s does not show certificate %d (%s) after UpdateDistribution", c.DistributionId, req.Bundle.CertID, arn)
	}
	return prev, nil
}

// Rollback puts back the recorded viewer certificate as it was. Without a
// record it deploys req.Bundle, if any.
func (d *CloudFront) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	c, s, err := d.open(req.Target)
	if err != nil {
		return err
	}
	var snap cfSnapshot
	if err := decodeSnapshot("CLOUDFRONT", previous, &snap); err != nil {
		return err
	}
	if len(previous) == 0 {
		if req.Bundle.CertID == 0 {
			return nil
		}
		_, err := d.Deploy(ctx, req)
		return err
	}
	vc := snap.ViewerCertificate
	if vc == nil {
		vc = &cftypes.ViewerCertificate{CloudFrontDefaultCertificate: sdk.Bool(true)}
	}
	return s.putViewerCert(ctx, c.DistributionId, vc)
}

// Sweep deletes certfleet's unused imports in us-east-1 (see ELB's Sweep).
func (d *CloudFront) Sweep(ctx context.Context, t deploy.Target) error {
	c, s, err := d.open(t)
	if err != nil {
		return err
	}
	_, err = sweepRegion(ctx, s, keepOf(c.KeepPrevious))
	return err
}

func (s *session) distributions(ctx context.Context) ([]cftypes.DistributionSummary, error) {
	var out []cftypes.DistributionSummary
	p := cloudfront.NewListDistributionsPaginator(s.cf, &cloudfront.ListDistributionsInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err, "CloudFront ListDistributions")
		}
		if page.DistributionList != nil {
			out = append(out, page.DistributionList.Items...)
		}
	}
	return out, nil
}

// Discover lists the account's distributions: one resource each, its
// first alternate domain name (or its cloudfront.net name) as Domain.
func (d *CloudFront) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	s, err := d.b.session(t, "CLOUDFRONT", cloudFrontRegion)
	if err != nil {
		return nil, err
	}
	dists, err := s.distributions(ctx)
	if err != nil {
		return nil, err
	}
	var out []deploy.Discovered
	for _, dd := range dists {
		id := sdk.ToString(dd.Id)
		domain := sdk.ToString(dd.DomainName)
		aliases := dd.Aliases
		if aliases == nil || len(aliases.Items) == 0 {
			// moto's ListDistributions leaves Aliases out; AWS fills it,
			// so this read happens there only for a distribution without.
			dc, _, err := s.distConfig(ctx, id)
			if err != nil {
				return nil, err
			}
			aliases = dc.Aliases
		}
		if aliases != nil && len(aliases.Items) > 0 {
			domain = aliases.Items[0]
		}
		found := deploy.Discovered{Key: id, CloudProduct: "CLOUDFRONT", Domain: domain, RegionID: cloudFrontRegion,
			InstanceID: id, EnableHTTPS: true}
		found.Config, _ = json.Marshal(map[string]any{"DistributionId": id})
		if vc := dd.ViewerCertificate; vc != nil && sdk.ToString(vc.ACMCertificateArn) != "" {
			info, _, err := s.describeCert(ctx, *vc.ACMCertificateArn)
			if err != nil {
				return nil, err
			}
			found.CertSha2, found.CertEndTime = info.Sha2, info.NotAfter
		}
		out = append(out, found)
	}
	return out, nil
}
