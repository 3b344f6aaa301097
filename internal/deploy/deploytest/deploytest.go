// Package deploytest checks that a deployer keeps the contract the engine
// relies on (Run, the conformance suite every product's test calls against a
// real target), and gives deployer and engine tests what they share: a ready
// certificate bundle (Bundle) and an in-memory deployer (Fake).
//
// It is for tests only, and it is not where product-specific behaviour is
// checked (file modes, reload rounds, payload fields): that stays in each
// product's own tests.
package deploytest

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync/atomic"
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

var nextCertID atomic.Int64

// freshBundle is Bundle with a CertID no other bundle of this test binary has.
func freshBundle(t testing.TB, name string) deploy.Bundle {
	t.Helper()
	b := Bundle(t, name)
	b.CertID = 1000 + nextCertID.Add(1)
	return b
}
