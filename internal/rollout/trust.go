package rollout

import (
	"bytes"
	"crypto/x509"
	"fmt"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/store"
)

// TrustedSuccessor says whether a renewal c may replace old by itself: ""
// when c chains to a root old chained to, else a one-line reason. c is
// trusted when
//   - its chain verifies (signatures checked) up to a CA certificate of old's
//     uploaded chain, or to one of roots (the operator's --renew-trust-store;
//     nil for none); or
//   - neither c's nor old's upload carries the CA: then c's topmost
//     certificate names the same issuer (name and authority key identifier)
//     as old's, i.e. the same CA key issued both. Without the CA's
//     certificate this cannot be checked by signature; a trust store makes
//     the check cryptographic.
func TrustedSuccessor(c, old store.Certificate, roots *x509.CertPool) string {
	leaf, chain, err := certs.ParseChain(c.CertPEM)
	if err != nil {
		return fmt.Sprintf("the uploaded certificate %d does not parse: %v", c.ID, err)
	}
	oldLeaf, oldChain, err := certs.ParseChain(old.CertPEM)
	if err != nil {
		return fmt.Sprintf("the certificate it renews (%d) does not parse: %v", old.ID, err)
	}
	inter := x509.NewCertPool()
	for _, ca := range chain {
		inter.AddCert(ca)
	}
	verifies := func(pool *x509.CertPool) bool {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: leaf.NotBefore,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err == nil
	}
	if len(oldChain) > 0 {
		pool := x509.NewCertPool()
		for _, ca := range oldChain {
			pool.AddCert(ca)
		}
		if verifies(pool) {
			return ""
		}
	}
	if roots != nil && verifies(roots) {
		return ""
	}
	if len(oldChain) == 0 && len(chain) == 0 && sameIssuer(leaf, oldLeaf) {
		return ""
	}
	top := leaf
	if len(chain) > 0 {
		top = chain[len(chain)-1]
	}
	return fmt.Sprintf("certificate %d (issuer %q) does not chain to the CA of certificate %d it renews (issuer %q) nor to the renewal trust store",
		c.ID, top.Issuer.String(), old.ID, topOf(oldLeaf, oldChain).Issuer.String())
}

func topOf(leaf *x509.Certificate, chain []*x509.Certificate) *x509.Certificate {
	if len(chain) > 0 {
		return chain[len(chain)-1]
	}
	return leaf
}

// sameIssuer: both were issued by the same CA name and key identifier.
func sameIssuer(a, b *x509.Certificate) bool {
	return len(a.AuthorityKeyId) > 0 && bytes.Equal(a.AuthorityKeyId, b.AuthorityKeyId) && bytes.Equal(a.RawIssuer, b.RawIssuer)
}
