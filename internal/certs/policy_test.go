package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// TestPolicyKeyStrength: RSA under 2048 bits and curves other than P-256,
// P-384 and P-521 are refused, naming the Key; AllowRSA1024 admits 1024.
func TestPolicyKeyStrength(t *testing.T) {
	t.Parallel()
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p224, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		desc   string
		opts   certstest.Options
		policy Policy
		want   string // empty: accepted
	}{
		{desc: "RSA 2048", opts: certstest.Options{KeyType: "rsa"}},
		{desc: "ECDSA P-256", opts: certstest.Options{}},
		{desc: "ECDSA P-384", opts: certstest.Options{Key: p384}},
		{desc: "Ed25519", opts: certstest.Options{KeyType: "ed25519"}},
		{desc: "RSA 1024", opts: certstest.Options{Key: rsa1024},
			want: "the RSA key has 1024 bits, fewer than the 2048 accepted; issue the certificate with an RSA key of 2048 bits or more, or an ECDSA P-256 key (a server started with --allow-rsa-1024"},
		{desc: "RSA 1024 allowed", opts: certstest.Options{Key: rsa1024}, policy: Policy{AllowRSA1024: true}},
		{desc: "ECDSA P-224", opts: certstest.Options{Key: p224}, want: "the ECDSA key is on curve P-224; only P-256, P-384 and P-521 are accepted"},
		{desc: "ECDSA P-224 with RSA 1024 allowed", opts: certstest.Options{Key: p224}, policy: Policy{AllowRSA1024: true}, want: "curve P-224"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := certstest.New(t, tt.opts)
			_, err := tt.policy.Parse(c.CertPEM, c.KeyPEM)
			var pe *Error
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (!errors.As(err, &pe) || pe.Param != "Key" || !strings.Contains(pe.Message, tt.want)):
				t.Errorf("got %v, want a Key error containing %q", err, tt.want)
			}
		})
	}
	// Parse is the default policy.
	c := certstest.New(t, certstest.Options{Key: rsa1024})
	if _, err := Parse(c.CertPEM, c.KeyPEM); err == nil {
		t.Error("Parse accepted an RSA-1024 key")
	}
}
