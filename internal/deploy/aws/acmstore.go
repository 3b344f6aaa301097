package aws

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/acm"
	acmtypes "github.com/aws/aws-sdk-go-v2/service/acm/types"
	"github.com/aws/smithy-go"

	"github.com/certfleet/certfleet/internal/deploy"
)

// certInfo is what certfleet needs to know of an ACM certificate.
type certInfo struct {
	Arn      string
	Sha2     string // upper-case hex SHA-256 of the leaf DER; "" when it has none yet
	Names    []string
	NotAfter time.Time
}

// isNotFound reports an AWS "no such thing" error.
func isNotFound(err error) bool {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return false
	}
	c := ae.ErrorCode()
	return c == "ResourceNotFoundException" || c == "CertificateNotFound" || strings.HasSuffix(c, "NotFound") ||
		strings.HasPrefix(c, "NoSuch")
}

// describeCert reads arn's leaf: fingerprint, names, expiry. found is
// false when ACM has no such certificate.
func (s *session) describeCert(ctx context.Context, arn string) (certInfo, bool, error) {
	out, err := s.acm.GetCertificate(ctx, &acm.GetCertificateInput{CertificateArn: sdk.String(arn)})
	if err != nil {
		if isNotFound(err) {
			return certInfo{Arn: arn}, false, nil
		}
		return certInfo{}, false, classify(err, "ACM GetCertificate "+arn)
	}
	info := certInfo{Arn: arn}
	blk, _ := pem.Decode([]byte(sdk.ToString(out.Certificate)))
	if blk == nil {
		return info, true, nil
	}
	sum := sha256.Sum256(blk.Bytes)
	info.Sha2 = strings.ToUpper(hex.EncodeToString(sum[:]))
	if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
		info.Names = certNames(c)
		info.NotAfter = c.NotAfter
	}
	return info, true, nil
}

func certNames(c *x509.Certificate) []string {
	names := slices.Clone(c.DNSNames)
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = []string{c.Subject.CommonName}
	}
	for i := range names {
		names[i] = strings.ToLower(names[i])
	}
	return names
}

// covers reports whether one of names serves host (exactly, or by a
// one-label wildcard).
func covers(names []string, host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	for _, n := range names {
		if n == host {
			return true
		}
		if rest, ok := strings.CutPrefix(n, "*."); ok {
			if i := strings.IndexByte(host, '.'); i > 0 && host[i+1:] == rest {
				return true
			}
		}
	}
	return false
}

// subset reports whether every name of a is served by b.
func subset(a, b []string) bool {
	for _, n := range a {
		if !covers(b, n) && !slices.Contains(b, n) {
			return false
		}
	}
	return len(a) > 0
}

// tags returns arn's tags.
func (s *session) tags(ctx context.Context, arn string) (map[string]string, error) {
	out, err := s.acm.ListTagsForCertificate(ctx, &acm.ListTagsForCertificateInput{CertificateArn: sdk.String(arn)})
	if err != nil {
		return nil, classify(err, "ACM ListTagsForCertificate "+arn)
	}
	m := map[string]string{}
	for _, t := range out.Tags {
		m[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	return m, nil
}

// listCerts returns every certificate summary of the region, all key types.
func (s *session) listCerts(ctx context.Context) ([]acmtypes.CertificateSummary, error) {
	var out []acmtypes.CertificateSummary
	in := &acm.ListCertificatesInput{Includes: &acmtypes.Filters{KeyTypes: acmtypes.KeyAlgorithm("").Values()}}
	p := acm.NewListCertificatesPaginator(s.acm, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, classify(err, "ACM ListCertificates in "+s.region)
		}
		out = append(out, page.CertificateSummaryList...)
	}
	return out, nil
}

// pemParts checks a bundle and returns the leaf, the chain and the key.
func pemParts(product string, b deploy.Bundle) (leaf, chain, key []byte, err error) {
	if b.CertPEM == "" || b.KeyPEM == "" {
		return nil, nil, nil, deploy.Permanentf("%s: certificate %d has no certificate or no private key to import", product, b.CertID)
	}
	leaf = []byte(b.CertPEM)
	chain = []byte(strings.TrimSpace(b.ChainPEM))
	if len(chain) == 0 && b.FullChainPEM != "" {
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(b.FullChainPEM), strings.TrimSpace(b.CertPEM)))
		chain = []byte(rest)
	}
	return leaf, chain, []byte(b.KeyPEM), nil
}

// ensureImported returns the ARN of certfleet's ACM import of b in the
// session's region, importing it only when none exists: one import per
// fingerprint and region, found again by its certfleet:sha256 tag (and
// checked against the certificate ACM holds, so a moved tag is not
// trusted).
func (s *session) ensureImported(ctx context.Context, b deploy.Bundle) (string, error) {
	leaf, chain, key, err := pemParts(s.product, b)
	if err != nil {
		return "", err
	}
	sha := strings.ToUpper(b.Sha2)
	ck := s.key + "|" + s.region + "|" + sha
	unlock, err := s.b.locks.Lock(ctx, ck)
	if err != nil {
		return "", fmt.Errorf("%s: waiting to import certificate %d: %w", s.product, b.CertID, err)
	}
	defer unlock()
	s.b.mu.Lock()
	arn := s.b.arnFor[ck]
	s.b.mu.Unlock()
	if arn != "" {
		info, found, err := s.describeCert(ctx, arn)
		if err != nil {
			return "", err
		}
		if found && info.Sha2 == sha {
			return arn, nil
		}
	}
	arn, err = s.findImport(ctx, sha)
	if err != nil {
		return "", err
	}
	if arn == "" {
		in := &acm.ImportCertificateInput{Certificate: leaf, PrivateKey: key,
			Tags: []acmtypes.Tag{{Key: sdk.String(tagSha256), Value: sdk.String(sha)},
				{Key: sdk.String(tagImported), Value: sdk.String(time.Now().UTC().Format(time.RFC3339Nano))}}}
		if len(chain) > 0 {
			in.CertificateChain = chain
		}
		out, err := s.acm.ImportCertificate(ctx, in)
		if err != nil {
			return "", classify(err, fmt.Sprintf("ACM ImportCertificate (certificate %d) in %s", b.CertID, s.region))
		}
		arn = sdk.ToString(out.CertificateArn)
	}
	s.b.mu.Lock()
	s.b.arnFor[ck] = arn
	s.b.mu.Unlock()
	return arn, nil
}

// findImport looks for certfleet's own import of sha in the region.
func (s *session) findImport(ctx context.Context, sha string) (string, error) {
	list, err := s.listCerts(ctx)
	if err != nil {
		return "", err
	}
	for _, c := range list {
		if c.Type != "" && c.Type != acmtypes.CertificateTypeImported {
			continue
		}
		arn := sdk.ToString(c.CertificateArn)
		tags, err := s.tags(ctx, arn)
		if err != nil {
			return "", err
		}
		if tags[tagSha256] != sha || tags[tagResource] != "" {
			continue
		}
		info, found, err := s.describeCert(ctx, arn)
		if err != nil {
			return "", err
		}
		if found && info.Sha2 == sha {
			return arn, nil
		}
	}
	return "", nil
}

// sweep deletes certfleet's own imports in the region that nothing uses,
// keeping the newest keep of them. inUse holds the ARNs the products'
// bindings use (ACM's InUseBy is consulted as well; a delete ACM refuses
// because the certificate is in use is skipped).
func (s *session) sweep(ctx context.Context, keep int, inUse map[string]bool) (deleted []string, err error) {
	list, err := s.listCerts(ctx)
	if err != nil {
		return nil, err
	}
	type cand struct {
		arn string
		at  time.Time
	}
	var unused []cand
	for _, c := range list {
		arn := sdk.ToString(c.CertificateArn)
		if inUse[arn] || (c.InUse != nil && *c.InUse) {
			continue
		}
		tags, err := s.tags(ctx, arn)
		if err != nil {
			return deleted, err
		}
		if tags[tagSha256] == "" || tags[tagResource] != "" {
			continue // not certfleet's shared import
		}
		d, err := s.acm.DescribeCertificate(ctx, &acm.DescribeCertificateInput{CertificateArn: sdk.String(arn)})
		if err != nil {
			if isNotFound(err) {
				continue
			}
			return deleted, classify(err, "ACM DescribeCertificate "+arn)
		}
		if len(d.Certificate.InUseBy) > 0 {
			continue
		}
		at, _ := time.Parse(time.RFC3339Nano, tags[tagImported])
		if at.IsZero() {
			at = sdk.ToTime(d.Certificate.ImportedAt)
		}
		if at.IsZero() {
			at = sdk.ToTime(d.Certificate.CreatedAt)
		}
		unused = append(unused, cand{arn, at})
	}
	sort.Slice(unused, func(i, j int) bool {
		if !unused[i].at.Equal(unused[j].at) {
			return unused[i].at.After(unused[j].at)
		}
		return unused[i].arn > unused[j].arn
	})
	for i, c := range unused {
		if i < keep {
			continue
		}
		_, err := s.acm.DeleteCertificate(ctx, &acm.DeleteCertificateInput{CertificateArn: sdk.String(c.arn)})
		var ae smithy.APIError
		switch {
		case err == nil:
			deleted = append(deleted, c.arn)
		case errors.As(err, &ae) && (ae.ErrorCode() == "ResourceInUseException" || isNotFound(err)):
		default:
			return deleted, classify(err, "ACM DeleteCertificate "+c.arn)
		}
	}
	s.b.mu.Lock()
	for k, v := range s.b.arnFor {
		if slices.Contains(deleted, v) {
			delete(s.b.arnFor, k)
		}
	}
	s.b.mu.Unlock()
	return deleted, nil
}
