package tencent

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

// aliasPrefix starts the Alias of every certificate certfleet uploads; the
// rest is the leaf's SHA-256 in lower-case hex.
const aliasPrefix = "certfleet-"

// sslRegion is the region SSL calls carry (the service is global).
const sslRegion = "ap-guangzhou"

func aliasOf(sha string) string { return aliasPrefix + strings.ToLower(sha) }

// sslCert is one certificate of DescribeCertificates.
type sslCert struct {
	CertificateId string
	Alias         string
	Domain        string
	CertEndTime   string
	InsertTime    string
}

func (s *session) listCerts(ctx context.Context, search string) ([]sslCert, error) {
	var all []sslCert
	for offset := 0; ; {
		var out struct {
			TotalCount   int
			Certificates []sslCert
		}
		params := map[string]any{"Offset": offset, "Limit": 100}
		if search != "" {
			params["SearchKey"] = search
		}
		if err := s.call(ctx, "ssl", "DescribeCertificates", sslRegion, params, &out); err != nil {
			return nil, err
		}
		all = append(all, out.Certificates...)
		offset += len(out.Certificates)
		if len(out.Certificates) == 0 || offset >= out.TotalCount {
			return all, nil
		}
	}
}

// certSha returns the SHA-256 of certId's leaf (upper-case hex), its names
// and expiry; found is false when SSL has no such certificate.
func (s *session) certSha(ctx context.Context, certID string) (sha string, names []string, notAfter time.Time, found bool, err error) {
	if certID == "" {
		return "", nil, time.Time{}, false, nil
	}
	var out struct {
		CertificateId        string
		CertificatePublicKey string
	}
	err = s.call(ctx, "ssl", "DescribeCertificateDetail", sslRegion, map[string]any{"CertificateId": certID}, &out)
	if err != nil {
		var ae *APIError
		if asAPI(err, &ae) && (strings.HasPrefix(ae.Code, "FailedOperation.CertificateNotFound") || strings.HasPrefix(ae.Code, "ResourceNotFound")) {
			return "", nil, time.Time{}, false, nil
		}
		return "", nil, time.Time{}, false, err
	}
	blk, _ := pem.Decode([]byte(out.CertificatePublicKey))
	if blk == nil {
		return "", nil, time.Time{}, true, nil
	}
	sum := sha256.Sum256(blk.Bytes)
	sha = strings.ToUpper(hex.EncodeToString(sum[:]))
	if c, err := x509.ParseCertificate(blk.Bytes); err == nil {
		names, notAfter = c.DNSNames, c.NotAfter
	}
	s.b.mu.Lock()
	s.b.shaOf[s.key+"|"+certID] = sha
	s.b.mu.Unlock()
	return sha, names, notAfter, true, nil
}

// shaOf is certSha's fingerprint, cached: an SSL certificate's content
// never changes.
func (s *session) shaOf(ctx context.Context, certID string) (string, error) {
	if certID == "" {
		return "", nil
	}
	s.b.mu.Lock()
	sha, ok := s.b.shaOf[s.key+"|"+certID]
	s.b.mu.Unlock()
	if ok {
		return sha, nil
	}
	sha, _, _, _, err := s.certSha(ctx, certID)
	return sha, err
}

func checkBundle(product string, b deploy.Bundle) error {
	if b.CertPEM == "" || b.KeyPEM == "" {
		return deploy.Permanentf("%s: certificate %d has no certificate or no private key to upload", product, b.CertID)
	}
	return nil
}

// ensureUploaded returns the SSL certificate ID of certfleet's upload of
// b, uploading it only when none exists: found by its Alias and checked
// against the certificate SSL holds.
func (s *session) ensureUploaded(ctx context.Context, b deploy.Bundle) (string, error) {
	if err := checkBundle(s.product, b); err != nil {
		return "", err
	}
	sha := strings.ToUpper(b.Sha2)
	ck := s.key + "|" + sha
	unlock, err := s.b.locks.Lock(ctx, ck)
	if err != nil {
		return "", fmt.Errorf("%s: waiting to upload certificate %d: %w", s.product, b.CertID, err)
	}
	defer unlock()
	s.b.mu.Lock()
	id := s.b.idFor[ck]
	s.b.mu.Unlock()
	if id != "" {
		if got, _, _, found, err := s.certSha(ctx, id); err != nil {
			return "", err
		} else if found && got == sha {
			return id, nil
		}
	}
	list, err := s.listCerts(ctx, aliasOf(sha))
	if err != nil {
		return "", err
	}
	id = ""
	for _, c := range list {
		if c.Alias != aliasOf(sha) {
			continue
		}
		if got, err := s.shaOf(ctx, c.CertificateId); err != nil {
			return "", err
		} else if got == sha {
			id = c.CertificateId
			break
		}
	}
	if id == "" {
		full := b.FullChainPEM
		if full == "" {
			full = strings.TrimSpace(b.CertPEM) + "\n" + b.ChainPEM
		}
		var out struct{ CertificateId, RepeatCertId string }
		err := s.call(ctx, "ssl", "UploadCertificate", sslRegion, map[string]any{
			"CertificatePublicKey": full, "CertificatePrivateKey": b.KeyPEM, "CertificateType": "SVR",
			"Alias": aliasOf(sha), "Repeatable": false}, &out)
		if err != nil {
			return "", fmt.Errorf("%w (uploading certificate %d)", err, b.CertID)
		}
		id = out.CertificateId
		if id == "" {
			id = out.RepeatCertId
		}
	}
	s.b.mu.Lock()
	s.b.idFor[ck] = id
	s.b.shaOf[s.key+"|"+id] = sha
	s.b.mu.Unlock()
	return id, nil
}

// sweep deletes certfleet's uploads (Alias certfleet-…) that no binding in
// inUse holds, keeping the newest keep of them.
func (s *session) sweep(ctx context.Context, keep int, inUse map[string]bool) ([]string, error) {
	list, err := s.listCerts(ctx, aliasPrefix)
	if err != nil {
		return nil, err
	}
	var unused []sslCert
	for _, c := range list {
		if strings.HasPrefix(c.Alias, aliasPrefix) && !inUse[c.CertificateId] {
			unused = append(unused, c)
		}
	}
	sort.Slice(unused, func(i, j int) bool {
		if unused[i].InsertTime != unused[j].InsertTime {
			return unused[i].InsertTime > unused[j].InsertTime
		}
		return unused[i].CertificateId > unused[j].CertificateId
	})
	var deleted []string
	for i, c := range unused {
		if i < keep {
			continue
		}
		var out struct{ DeleteResult bool }
		err := s.call(ctx, "ssl", "DeleteCertificate", sslRegion, map[string]any{"CertificateId": c.CertificateId}, &out)
		var ae *APIError
		switch {
		case err == nil && out.DeleteResult:
			deleted = append(deleted, c.CertificateId)
		case err == nil, asAPI(err, &ae) && strings.HasPrefix(ae.Code, "FailedOperation"):
			// in use by something certfleet does not know of, or gone
		default:
			return deleted, err
		}
	}
	s.b.mu.Lock()
	for k, v := range s.b.idFor {
		for _, d := range deleted {
			if v == d {
				delete(s.b.idFor, k)
			}
		}
	}
	s.b.mu.Unlock()
	return deleted, nil
}
