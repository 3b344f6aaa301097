// Package certstest generates certificate chains for tests: a root CA, an
// intermediate CA and a leaf with its private key, in the PEM forms that
// UploadUserCertificate accepts.
//
// It is for tests only. Its certificates are trusted by nothing and its RSA
// keys are shared between calls (see Options.KeyType), so nothing it makes
// is fit for use outside a test.
package certstest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Chain is a generated root CA → intermediate CA → leaf.
type Chain struct {
	RootPEM, IntermediatePEM, LeafPEM string
	KeyPEM                            string // the leaf's private key, in Options.KeyFormat
	Leaf                              *x509.Certificate
	CertPEM                           string        // LeafPEM followed by IntermediatePEM, as uploaded
	Key                               crypto.Signer // the leaf's private key

	root, inter *x509.Certificate // the CAs, and the key that signs leaves (Options.From)
	interKey    crypto.Signer
}

// Options shape the leaf. The zero value gives an ECDSA P-256 leaf for
// example.test, valid from an hour ago for 90 days, with a PKCS#8 key.
type Options struct {
	// CommonName defaults to the first of DNSNames, else "example.test".
	CommonName string
	// DNSNames are the leaf's SANs; entries that parse as IP addresses
	// become IP SANs. Defaults to CommonName.
	DNSNames []string
	// NotBefore defaults to an hour ago, NotAfter to NotBefore + 1h + 90 days.
	NotBefore, NotAfter time.Time
	// KeyType is "ecdsa" (P-256, the default), "rsa" (2048 bits) or
	// "ed25519". RSA keys come from a small pool generated once per test
	// binary, so two RSA chains may share a key; set Key when they must not.
	KeyType string
	// KeyFormat is "pkcs8" (the default), "pkcs1" (RSA only) or "sec1"
	// (ECDSA only).
	KeyFormat string
	// Key, if set, is the leaf's key, and KeyType is ignored: use it to
	// renew a certificate on the same key, or to get a key that is
	// certainly different from another chain's.
	Key crypto.Signer
	// From, if set, issues the leaf from From's CAs (same root and
	// intermediate): a renewal by the same CA. Otherwise every chain has
	// CAs of its own.
	From *Chain
}

// New generates a chain. It calls t.Fatal if the options make no sense. It is
// safe for concurrent use.
func New(t testing.TB, o Options) Chain {
	t.Helper()
	if o.CommonName == "" {
		o.CommonName = "example.test"
		if len(o.DNSNames) > 0 {
			o.CommonName = o.DNSNames[0]
		}
	}
	if len(o.DNSNames) == 0 {
		o.DNSNames = []string{o.CommonName}
	}
	if o.NotBefore.IsZero() {
		o.NotBefore = time.Now().Add(-time.Hour)
	}
	if o.NotAfter.IsZero() {
		o.NotAfter = o.NotBefore.Add(time.Hour + 90*24*time.Hour)
	}
	key := o.Key
	if key == nil {
		key = newKey(t, o.KeyType)
	}
	keyPEM := encodeKey(t, key, o.KeyFormat)

	// The CAs outlive the leaf by a day on each side.
	caFrom, caTo := o.NotBefore.Add(-24*time.Hour), o.NotAfter.Add(24*time.Hour)
	var root, inter *x509.Certificate
	var interKey crypto.Signer
	if o.From != nil {
		root, inter, interKey = o.From.root, o.From.inter, o.From.interKey
	} else {
		rootKey := newKey(t, "ecdsa")
		root = sign(t, &x509.Certificate{
			Subject:               pkix.Name{CommonName: "certstest Root CA", Organization: []string{"certstest"}},
			NotBefore:             caFrom,
			NotAfter:              caTo,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
		}, nil, rootKey.Public(), rootKey)
		interKey = newKey(t, "ecdsa")
		inter = sign(t, &x509.Certificate{
			Subject:               pkix.Name{CommonName: "certstest Intermediate CA", Organization: []string{"certstest"}},
			NotBefore:             caFrom,
			NotAfter:              caTo,
			KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			BasicConstraintsValid: true,
			IsCA:                  true,
			MaxPathLenZero:        true,
		}, root, interKey.Public(), rootKey)
	}

	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: o.CommonName},
		NotBefore:   o.NotBefore,
		NotAfter:    o.NotAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if _, ok := key.(*rsa.PrivateKey); ok {
		tmpl.KeyUsage |= x509.KeyUsageKeyEncipherment
	}
	for _, n := range o.DNSNames {
		if ip := net.ParseIP(n); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, n)
		}
	}
	leaf := sign(t, tmpl, inter, key.Public(), interKey)

	c := Chain{
		RootPEM:         encodeCert(root),
		IntermediatePEM: encodeCert(inter),
		LeafPEM:         encodeCert(leaf),
		KeyPEM:          keyPEM,
		Leaf:            leaf,
		Key:             key,
		root:            root,
		inter:           inter,
		interKey:        interKey,
	}
	c.CertPEM = c.LeafPEM + c.IntermediatePEM
	return c
}

// rsaKeys is the pool of RSA keys: a 2048-bit key takes a tenth of a second
// or more to generate on a small machine, and every test wants one.
var (
	rsaKeys [3]struct {
		once sync.Once
		key  *rsa.PrivateKey
		err  error
	}
	rsaNext atomic.Uint32
)

func newKey(t testing.TB, keyType string) crypto.Signer {
	t.Helper()
	switch keyType {
	case "", "ecdsa":
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatalf("certstest: generate ECDSA key: %v", err)
		}
		return k
	case "ed25519":
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatalf("certstest: generate Ed25519 key: %v", err)
		}
		return k
	case "rsa":
		slot := &rsaKeys[rsaNext.Add(1)%uint32(len(rsaKeys))]
		slot.once.Do(func() { slot.key, slot.err = rsa.GenerateKey(rand.Reader, 2048) })
		if slot.err != nil {
			t.Fatalf("certstest: generate RSA key: %v", slot.err)
		}
		return slot.key
	}
	t.Fatalf("certstest: unknown KeyType %q; want rsa, ecdsa or ed25519", keyType)
	return nil
}

func encodeKey(t testing.TB, key crypto.Signer, format string) string {
	t.Helper()
	var (
		blockType string
		der       []byte
		err       error
	)
	switch format {
	case "", "pkcs8":
		blockType = "PRIVATE KEY"
		der, err = x509.MarshalPKCS8PrivateKey(key)
	case "pkcs1":
		k, ok := key.(*rsa.PrivateKey)
		if !ok {
			t.Fatalf("certstest: KeyFormat pkcs1 needs an RSA key, not %T", key)
		}
		blockType = "RSA PRIVATE KEY"
		der = x509.MarshalPKCS1PrivateKey(k)
	case "sec1":
		k, ok := key.(*ecdsa.PrivateKey)
		if !ok {
			t.Fatalf("certstest: KeyFormat sec1 needs an ECDSA key, not %T", key)
		}
		blockType = "EC PRIVATE KEY"
		der, err = x509.MarshalECPrivateKey(k)
	default:
		t.Fatalf("certstest: unknown KeyFormat %q; want pkcs8, pkcs1 or sec1", format)
	}
	if err != nil {
		t.Fatalf("certstest: encode %T: %v", key, err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))
}

// sign creates tmpl signed by parent's key; a nil parent makes it
// self-signed.
func sign(t testing.TB, tmpl, parent *x509.Certificate, pub crypto.PublicKey, parentKey crypto.Signer) *x509.Certificate {
	t.Helper()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		t.Fatalf("certstest: serial number: %v", err)
	}
	tmpl.SerialNumber = serial.Add(serial, big.NewInt(1)) // never zero
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, parentKey)
	if err != nil {
		t.Fatalf("certstest: create certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("certstest: parse certificate %q: %v", tmpl.Subject.CommonName, err)
	}
	return c
}

func encodeCert(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}
