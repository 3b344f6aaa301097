// Package deploytest gives deployer tests a ready certificate bundle.
package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/deploy"
)

// Bundle returns a fresh bundle for the host name: an ECDSA leaf with its
// intermediate as the chain, CertID 42.
func Bundle(t testing.TB, name string) deploy.Bundle {
	t.Helper()
	ch := certstest.New(t, certstest.Options{DNSNames: []string{name}})
	sum := sha256.Sum256(ch.Leaf.Raw)
	return deploy.Bundle{
		CertID:       42,
		Name:         name,
		CertPEM:      ch.LeafPEM,
		ChainPEM:     ch.IntermediatePEM,
		FullChainPEM: ch.CertPEM,
		KeyPEM:       ch.KeyPEM,
		Sha2:         strings.ToUpper(hex.EncodeToString(sum[:])),
	}
}
