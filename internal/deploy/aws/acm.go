package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"

	"github.com/certfleet/certfleet/internal/deploy"
)

// ACMDescription is aws/ACM's Description.
var ACMDescription = deploy.Description{
	CloudName:    CloudName,
	CloudProduct: "ACM",
	Summary:      "Re-imports the certificate into one ACM certificate ARN, so every service using that ARN serves it.",
	Config: []deploy.Field{
		{Name: "CertificateArn", Type: deploy.TypeString,
			Help: "The imported ACM certificate to re-import into; empty: one certfleet creates for this resource (tagged certfleet:resource)."},
		{Name: "RegionId", Type: deploy.TypeString,
			Help: "The ACM region; defaults to the region in CertificateArn, else us-east-1."},
	},
	Access: accessSpec,
}

// ACMConfig is an aws/ACM resource's Config.
type ACMConfig struct {
	CertificateArn string
	RegionId       string
}

// ACM re-imports certificates into ACM ARNs. It is safe for concurrent use.
type ACM struct{ b *base }

var (
	_ deploy.Product         = (*ACM)(nil)
	_ deploy.Rollbacker      = (*ACM)(nil)
	_ deploy.Snapshotter     = (*ACM)(nil)
	_ deploy.Checker         = (*ACM)(nil)
	_ deploy.ConfigValidator = (*ACM)(nil)
	_ deploy.Discoverer      = (*ACM)(nil)
)

// NewACM returns the aws/ACM product.
func NewACM(o Options) *ACM { return &ACM{b: newBase(o)} }

// Describe returns ACMDescription.
func (d *ACM) Describe() deploy.Description { return ACMDescription }

// ValidateConfig checks CertificateArn and RegionId agree.
func (d *ACM) ValidateConfig(config json.RawMessage) error {
	_, err := parseACM(config)
	return err
}

func parseACM(config json.RawMessage) (ACMConfig, error) {
	var c ACMConfig
	if err := ACMDescription.DecodeConfig(config, &c); err != nil {
		return c, err
	}
	if c.CertificateArn != "" {
		if !strings.HasPrefix(c.CertificateArn, "arn:") || !strings.Contains(c.CertificateArn, ":acm:") || regionOf(c.CertificateArn) == "" {
			return c, deploy.Permanentf("aws/ACM: Config key \"CertificateArn\" must be an ACM certificate ARN like arn:aws:acm:us-east-1:123456789012:certificate/ID (got %q)", c.CertificateArn)
		}
		if c.RegionId != "" && c.RegionId != regionOf(c.CertificateArn) {
			return c, deploy.Permanentf("aws/ACM: Config key \"RegionId\" %q is not the region of CertificateArn (%s)", c.RegionId, regionOf(c.CertificateArn))
		}
		c.RegionId = regionOf(c.CertificateArn)
	}
	if c.RegionId == "" {
		c.RegionId = "us-east-1"
	}
	return c, nil
}

// acmSnapshot is ACM's previous state.
type acmSnapshot struct {
	Arn string `json:",omitempty"`
	// Existed is false when certfleet created the ARN for the resource.
	Existed bool
	Sha2    string `json:",omitempty"`
}

func (d *ACM) open(t deploy.Target) (ACMConfig, *session, error) {
	c, err := parseACM(t.Config)
	if err != nil {
		return c, nil, err
	}
	s, err := d.b.session(t, "ACM", c.RegionId)
	return c, s, err
}

func resourceTag(t deploy.Target) string { return fmt.Sprintf("%d/%d", t.AccountID, t.ResourceID) }

// arn returns the resource's certificate ARN and what it holds; "" when
// certfleet has not created one for it yet.
func (d *ACM) arn(ctx context.Context, c ACMConfig, s *session, t deploy.Target) (certInfo, bool, error) {
	if c.CertificateArn != "" {
		info, found, err := s.describeCert(ctx, c.CertificateArn)
		if err == nil && !found {
			err = deploy.Permanentf("aws/ACM: certificate %s not found in %s", c.CertificateArn, c.RegionId)
		}
		return info, found, err
	}
	ck := s.key + "|" + s.region + "|resource " + resourceTag(t)
	s.b.mu.Lock()
	arn := s.b.arnFor[ck]
	s.b.mu.Unlock()
	if arn != "" {
		if info, found, err := s.describeCert(ctx, arn); err != nil || found {
			return info, found, err
		}
	}
	list, err := s.listCerts(ctx)
	if err != nil {
		return certInfo{}, false, err
	}
	for _, cs := range list {
		a := sdk.ToString(cs.CertificateArn)
		tags, err := s.tags(ctx, a)
		if err != nil {
			return certInfo{}, false, err
		}
		if tags[tagResource] == resourceTag(t) {
			s.b.mu.Lock()
			s.b.arnFor[ck] = a
			s.b.mu.Unlock()
			return s.describeCert(ctx, a)
		}
	}
	return certInfo{}, false, nil
}

// Snapshot records the ARN and the fingerprint it holds.
func (d *ACM) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	info, found, err := d.arn(ctx, c, s, req.Target)
	if err != nil {
		return nil, err
	}
	return json.Marshal(acmSnapshot{Arn: info.Arn, Existed: found, Sha2: info.Sha2})
}

// AlreadyDeployed reports whether the ARN holds the bundle.
func (d *ACM) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return false, err
	}
	info, found, err := d.arn(ctx, c, s, req.Target)
	return err == nil && found && info.Sha2 == strings.ToUpper(req.Bundle.Sha2), err
}

// Deploy re-imports the bundle into the resource's ARN (ImportCertificate
// with CertificateArn), creating certfleet's own ARN for a resource without
// CertificateArn on its first deployment; then reads it back.
func (d *ACM) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	c, s, err := d.open(req.Target)
	if err != nil {
		return nil, err
	}
	if _, _, _, err := pemParts(s.product, req.Bundle); err != nil {
		return nil, err
	}
	info, found, err := d.arn(ctx, c, s, req.Target)
	if err != nil {
		return nil, err
	}
	prev, _ := json.Marshal(acmSnapshot{Arn: info.Arn, Existed: found, Sha2: info.Sha2})
	if found && info.Sha2 == strings.ToUpper(req.Bundle.Sha2) {
		return prev, nil
	}
	arn, err := d.importInto(ctx, c, s, req.Target, info.Arn, found, req.Bundle)
	if err != nil {
		return prev, err
	}
	got, _, err := s.describeCert(ctx, arn)
	if err != nil {
		return prev, err
	}
	if got.Sha2 != strings.ToUpper(req.Bundle.Sha2) {
		return prev, fmt.Errorf("aws/ACM: %s does not hold certificate %d after ImportCertificate", arn, req.Bundle.CertID)
	}
	return prev, nil
}

func (d *ACM) importInto(ctx context.Context, c ACMConfig, s *session, t deploy.Target, arn string, exists bool, b deploy.Bundle) (string, error) {
	leaf, chain, key, err := pemParts(s.product, b)
	if err != nil {
		return "", err
	}
	in := &acm.ImportCertificateInput{Certificate: leaf, PrivateKey: key}
	if len(chain) > 0 {
		in.CertificateChain = chain
	}
	if exists {
		in.CertificateArn = sdk.String(arn)
	} else {
		in.Tags = []acmtypes.Tag{{Key: sdk.String(tagResource), Value: sdk.String(resourceTag(t))}}
	}
	out, err := s.acm.ImportCertificate(ctx, in)
	if err != nil {
		where := arn
		if !exists {
			where = "a new certificate in " + s.region
		}
		return "", classify(err, fmt.Sprintf("ACM ImportCertificate (certificate %d) into %s", b.CertID, where))
	}
	if exists && c.CertificateArn == "" {
		// AWS keeps an ARN's tags across a re-import; moto drops them.
		// Setting the tag again costs one call and keeps the ARN findable.
		_, err := s.acm.AddTagsToCertificate(ctx, &acm.AddTagsToCertificateInput{CertificateArn: sdk.String(arn),
			Tags: []acmtypes.Tag{{Key: sdk.String(tagResource), Value: sdk.String(resourceTag(t))}}})
		if err != nil {
			return "", classify(err, "ACM AddTagsToCertificate "+arn)
		}
	}
	return sdk.ToString(out.CertificateArn), nil
}

// Rollback re-imports req.Bundle (the certificate the resource held
// before) into the ARN. With no certificate before, it deletes the ARN
// certfleet created for the resource; an ARN that held a certificate
// certfleet never deployed cannot be restored (ACM does not give back an
// imported private key) and the error says so.
func (d *ACM) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	c, s, err := d.open(req.Target)
	if err != nil {
		return err
	}
	var snap acmSnapshot
	if err := decodeSnapshot("ACM", previous, &snap); err != nil {
		return err
	}
	info, found, err := d.arn(ctx, c, s, req.Target)
	if err != nil {
		return err
	}
	if req.Bundle.CertID != 0 {
		if found && info.Sha2 == strings.ToUpper(req.Bundle.Sha2) {
			return nil
		}
		_, err := d.importInto(ctx, c, s, req.Target, info.Arn, found, req.Bundle)
		return err
	}
	switch {
	case !found:
		return nil
	case snap.Existed && snap.Sha2 == info.Sha2:
		return nil
	case snap.Existed || c.CertificateArn != "":
		return deploy.Permanentf("aws/ACM: %s held a certificate certfleet did not deploy before (SHA-256 %s); ACM does not give back an imported private key, so import it again by hand", info.Arn, snap.Sha2)
	}
	_, err = s.acm.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: sdk.String(info.Arn)})
	if err != nil && !isNotFound(err) {
		return classify(err, "ACM DeleteCertificate "+info.Arn)
	}
	return nil
}

// Discover lists the imported ACM certificates of the CloudAccess's
// Regions, certfleet's own shared imports (tagged certfleet:sha256) left
// out: re-importing into them is what the ACM product is for.
func (d *ACM) Discover(ctx context.Context, t deploy.Target) ([]deploy.Discovered, error) {
	regions, err := regionsOf(t)
	if err != nil {
		return nil, err
	}
	var out []deploy.Discovered
	for _, region := range regions {
		s, err := d.b.session(t, "ACM", region)
		if err != nil {
			return nil, err
		}
		list, err := s.listCerts(ctx)
		if err != nil {
			return nil, err
		}
		for _, cs := range list {
			if cs.Type != "" && cs.Type != acmtypes.CertificateTypeImported {
				continue
			}
			arn := sdk.ToString(cs.CertificateArn)
			tags, err := s.tags(ctx, arn)
			if err != nil {
				return nil, err
			}
			if tags[tagSha256] != "" {
				continue
			}
			info, found, err := s.describeCert(ctx, arn)
			if err != nil {
				return nil, err
			}
			if !found {
				continue
			}
			domain := sdk.ToString(cs.DomainName)
			cfg, _ := json.Marshal(map[string]any{"CertificateArn": arn, "RegionId": region})
			out = append(out, deploy.Discovered{Key: arn, CloudProduct: "ACM", Domain: domain, RegionID: region,
				InstanceID: arn, Config: cfg, EnableHTTPS: sdk.ToBool(cs.InUse), CertSha2: info.Sha2, CertEndTime: info.NotAfter})
		}
	}
	return out, nil
}
