package certs_test

import (
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/certs/certstest"
)

func TestParseGood(t *testing.T) {
	t.Parallel()
	ecParams, err := asn1.Marshal(asn1.ObjectIdentifier{1, 2, 840, 10045, 3, 1, 7}) // prime256v1
	if err != nil {
		t.Fatal(err)
	}
	ss := selfSigned(t, &x509.Certificate{Subject: pkix.Name{CommonName: "self.test"}, DNSNames: []string{"self.test"}})

	tests := []struct {
		desc      string
		opts      certstest.Options
		edit      func(c certstest.Chain) (cert, key string) // nil: c.CertPEM, c.KeyPEM
		wantAlg   string
		wantBlock string // key PEM block type
		wantChain int
	}{
		{desc: "ECDSA PKCS#8 (defaults)", wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 1},
		{desc: "ECDSA SEC1", opts: certstest.Options{KeyFormat: "sec1"}, wantAlg: "ECC", wantBlock: "EC PRIVATE KEY", wantChain: 1},
		{desc: "RSA PKCS#8", opts: certstest.Options{KeyType: "rsa"}, wantAlg: "RSA", wantBlock: "PRIVATE KEY", wantChain: 1},
		{desc: "RSA PKCS#1", opts: certstest.Options{KeyType: "rsa", KeyFormat: "pkcs1"}, wantAlg: "RSA", wantBlock: "RSA PRIVATE KEY", wantChain: 1},
		{desc: "Ed25519 PKCS#8", opts: certstest.Options{KeyType: "ed25519"}, wantAlg: "Ed25519", wantBlock: "PRIVATE KEY", wantChain: 1},
		{
			desc: "chain with the root",
			edit: func(c certstest.Chain) (string, string) {
				return c.CertPEM + c.RootPEM, c.KeyPEM
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 2,
		},
		{
			desc: "leaf alone",
			edit: func(c certstest.Chain) (string, string) {
				return c.LeafPEM, c.KeyPEM
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 0,
		},
		{
			desc: "self-signed leaf without chain",
			edit: func(certstest.Chain) (string, string) {
				return ss.certPEM, ss.keyPEM
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 0,
		},
		{
			desc: "CRLF line endings, blank lines and surrounding whitespace",
			edit: func(c certstest.Chain) (string, string) {
				crlf := func(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
				return "\r\n  " + crlf(c.LeafPEM) + "\r\n\r\n" + crlf(c.IntermediatePEM) + " \t\r\n", crlf(c.KeyPEM) + "\n\n"
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 1,
		},
		{
			desc: "UTF-8 byte-order mark",
			edit: func(c certstest.Chain) (string, string) {
				return "\ufeff" + c.CertPEM, "\ufeff" + c.KeyPEM
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 1,
		},
		{
			desc: "PEM headers dropped",
			edit: func(c certstest.Chain) (string, string) {
				leaf, _ := pem.Decode([]byte(c.LeafPEM))
				leaf.Headers = map[string]string{"Comment": "leaf"}
				return string(pem.EncodeToMemory(leaf)) + c.IntermediatePEM, c.KeyPEM
			},
			wantAlg: "ECC", wantBlock: "PRIVATE KEY", wantChain: 1,
		},
		{
			desc: "EC PARAMETERS before a SEC1 key, as openssl ecparam -genkey writes it",
			opts: certstest.Options{KeyFormat: "sec1"},
			edit: func(c certstest.Chain) (string, string) {
				return c.CertPEM, pemOf("EC PARAMETERS", ecParams) + c.KeyPEM
			},
			wantAlg: "ECC", wantBlock: "EC PRIVATE KEY", wantChain: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			c := certstest.New(t, tt.opts)
			certPEM, keyPEM := c.CertPEM, c.KeyPEM
			if tt.edit != nil {
				certPEM, keyPEM = tt.edit(c)
			}
			p, err := certs.Parse(certPEM, keyPEM)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if p.Info.Algorithm != tt.wantAlg {
				t.Errorf("Algorithm = %q, want %q", p.Info.Algorithm, tt.wantAlg)
			}
			if len(p.Chain) != tt.wantChain {
				t.Errorf("len(Chain) = %d, want %d", len(p.Chain), tt.wantChain)
			}
			checkNormalized(t, p)
			b, _ := pem.Decode([]byte(p.KeyPEM))
			if b == nil || b.Type != tt.wantBlock {
				t.Errorf("KeyPEM = %q, want one %s block", p.KeyPEM, tt.wantBlock)
			}
			if strings.Contains(p.KeyPEM, "EC PARAMETERS") {
				t.Errorf("KeyPEM kept the EC PARAMETERS block:\n%s", p.KeyPEM)
			}

			// The normalized form parses to the same thing.
			again, err := certs.Parse(p.CertPEM, p.KeyPEM)
			if err != nil {
				t.Fatalf("Parse(normalized): %v", err)
			}
			if again.CertPEM != p.CertPEM || again.KeyPEM != p.KeyPEM || !reflect.DeepEqual(again.Info, p.Info) {
				t.Errorf("Parse(normalized) differs from Parse")
			}

			leaf, chain, err := certs.ParseChain(certPEM)
			if err != nil {
				t.Fatalf("ParseChain: %v", err)
			}
			if !leaf.Equal(p.Leaf) || len(chain) != len(p.Chain) {
				t.Errorf("ParseChain = %v, %d certs; want the leaf of Parse and %d certs", leaf.Subject, len(chain), len(p.Chain))
			}
		})
	}
}

// checkNormalized checks the PEM forms of p against its certificates.
func checkNormalized(t *testing.T, p *certs.Parsed) {
	t.Helper()
	if want := pemOf("CERTIFICATE", p.Leaf.Raw); p.LeafPEM != want {
		t.Errorf("LeafPEM = %q, want %q", p.LeafPEM, want)
	}
	var chain string
	for _, c := range p.Chain {
		chain += pemOf("CERTIFICATE", c.Raw)
	}
	if p.ChainPEM != chain {
		t.Errorf("ChainPEM = %q, want %q", p.ChainPEM, chain)
	}
	if p.CertPEM != p.LeafPEM+p.ChainPEM {
		t.Errorf("CertPEM is not LeafPEM + ChainPEM")
	}
	if !strings.HasPrefix(p.LeafPEM, "-----BEGIN CERTIFICATE-----\n") || !strings.HasSuffix(p.LeafPEM, "\n-----END CERTIFICATE-----\n") {
		t.Errorf("LeafPEM is not one clean CERTIFICATE block: %q", p.LeafPEM)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	a := certstest.New(t, certstest.Options{DNSNames: []string{"a.test"}})
	b := certstest.New(t, certstest.Options{DNSNames: []string{"b.test"}})
	rsaA := certstest.New(t, certstest.Options{KeyType: "rsa", KeyFormat: "pkcs1"})
	otherRSA, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaB := certstest.New(t, certstest.Options{Key: otherRSA, KeyFormat: "pkcs1"})
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519DER, err := x509.MarshalPKCS8PrivateKey(x25519)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8DER := derOf(t, a.KeyPEM)
	sec1DER, err := x509.MarshalECPrivateKey(a.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	encryptedRSA := pem.EncodeToMemory(&pem.Block{
		Type:    "RSA PRIVATE KEY",
		Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-128-CBC,00112233445566778899AABBCCDDEEFF"},
		Bytes:   []byte("not really ciphertext"),
	})
	elevenCerts := strings.Repeat(a.LeafPEM, 11)
	// A BEGIN line with no END before the next block's.
	unterminated := a.LeafPEM + "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIQ\n" + a.IntermediatePEM

	tests := []struct {
		desc      string
		cert, key string
		wantParam string
		want      string // a phrase the message must contain
	}{
		// Cert.
		{desc: "empty cert", cert: "", key: a.KeyPEM, wantParam: "Cert", want: "no PEM block"},
		{desc: "cert not PEM", cert: "hello, world", key: a.KeyPEM, wantParam: "Cert", want: "no PEM block"},
		{desc: "cert is DER", cert: string(a.Leaf.Raw), key: a.KeyPEM, wantParam: "Cert", want: "no PEM block"},
		{desc: "key in Cert", cert: a.LeafPEM + a.KeyPEM, key: a.KeyPEM, wantParam: "Cert", want: "block 2 is a PRIVATE KEY block, not a CERTIFICATE; put the private key in Key"},
		{desc: "CSR in Cert", cert: pemOf("CERTIFICATE REQUEST", []byte{0x30, 0}), key: a.KeyPEM, wantParam: "Cert", want: "block 1 is a CERTIFICATE REQUEST block, not a CERTIFICATE"},
		{desc: "bad DER", cert: a.LeafPEM + pemOf("CERTIFICATE", []byte("junk")), key: a.KeyPEM, wantParam: "Cert", want: "block 2 is not a valid X.509 certificate: "},
		{desc: "garbage before", cert: "subject=CN=a.test\n" + a.CertPEM, key: a.KeyPEM, wantParam: "Cert", want: "unexpected text before the first PEM block"},
		{desc: "garbage between", cert: a.LeafPEM + "issuer=certstest\n" + a.IntermediatePEM, key: a.KeyPEM, wantParam: "Cert", want: "unexpected text after block 1"},
		{desc: "garbage after", cert: a.CertPEM + "\n--\n", key: a.KeyPEM, wantParam: "Cert", want: "unexpected text after block 2"},
		{desc: "unterminated block", cert: unterminated, key: a.KeyPEM, wantParam: "Cert", want: "block 2 is not well-formed PEM"},
		{desc: "truncated", cert: a.CertPEM[:len(a.CertPEM)-30], key: a.KeyPEM, wantParam: "Cert", want: "block 2 is not well-formed PEM"},
		{desc: "bad base64", cert: strings.Replace(a.LeafPEM, "\n", "\n!!", 2), key: a.KeyPEM, wantParam: "Cert", want: "block 1 is not well-formed PEM"},
		{desc: "intermediate of another chain", cert: a.LeafPEM + b.IntermediatePEM, key: a.KeyPEM, wantParam: "Cert", want: "certificate 1 (CN=a.test) is not signed by certificate 2 (CN=certstest Intermediate CA,O=certstest)"},
		{desc: "root without intermediate", cert: a.LeafPEM + a.RootPEM, key: a.KeyPEM, wantParam: "Cert", want: "certificate 1 (CN=a.test) is not signed by certificate 2 (CN=certstest Root CA,O=certstest)"},
		{desc: "chain order wrong", cert: a.IntermediatePEM + a.LeafPEM, key: a.KeyPEM, wantParam: "Cert", want: "the certificates look reversed"},
		{desc: "chain order wrong after the leaf", cert: a.LeafPEM + a.RootPEM + a.IntermediatePEM, key: a.KeyPEM, wantParam: "Cert", want: "certificate 1 (CN=a.test) is not signed by certificate 2"},
		{desc: "cert too large", cert: a.CertPEM + strings.Repeat(" ", 64<<10), key: a.KeyPEM, wantParam: "Cert", want: "too large"},
		{desc: "too many certificates", cert: elevenCerts, key: a.KeyPEM, wantParam: "Cert", want: "holds 11 certificates; the limit is 10"},

		// Key.
		{desc: "empty key", cert: a.CertPEM, key: "", wantParam: "Key", want: "no PEM block"},
		{desc: "key not PEM", cert: a.CertPEM, key: "secret", wantParam: "Key", want: "no PEM block"},
		{desc: "certificate in Key", cert: a.CertPEM, key: a.LeafPEM, wantParam: "Key", want: "block 1 is a CERTIFICATE, not a private key; put certificates in Cert"},
		{desc: "public key in Key", cert: a.CertPEM, key: pemOf("PUBLIC KEY", []byte{0x30, 0}), wantParam: "Key", want: "block 1 is a PUBLIC KEY block, not a private key"},
		{desc: "encrypted PKCS#8", cert: a.CertPEM, key: pemOf("ENCRYPTED PRIVATE KEY", []byte{0x30, 0}), wantParam: "Key", want: "encrypted keys are not supported; decrypt it first"},
		{desc: "encrypted PKCS#1", cert: rsaA.CertPEM, key: string(encryptedRSA), wantParam: "Key", want: "encrypted keys are not supported; decrypt it first"},
		{desc: "unparseable PKCS#8", cert: a.CertPEM, key: pemOf("PRIVATE KEY", []byte("junk")), wantParam: "Key", want: "not a valid PKCS#8 private key"},
		{desc: "unparseable SEC1", cert: a.CertPEM, key: pemOf("EC PRIVATE KEY", []byte("junk")), wantParam: "Key", want: "not a valid SEC1 EC private key: x509: failed to parse EC private key: malformed DER"},
		{desc: "trailing data after the key", cert: a.CertPEM, key: pemOf("EC PRIVATE KEY", append(sec1DER, 0, 0)), wantParam: "Key", want: "trailing data"},
		{desc: "PKCS#8 labelled PKCS#1", cert: a.CertPEM, key: pemOf("RSA PRIVATE KEY", pkcs8DER), wantParam: "Key", want: `the RSA PRIVATE KEY block holds a PKCS#8 key; change its BEGIN and END lines to "PRIVATE KEY"`},
		{desc: "SEC1 labelled PKCS#8", cert: a.CertPEM, key: pemOf("PRIVATE KEY", sec1DER), wantParam: "Key", want: `holds a SEC1 EC key; change its BEGIN and END lines to "EC PRIVATE KEY"`},
		{desc: "unsupported key type", cert: a.CertPEM, key: pemOf("PRIVATE KEY", x25519DER), wantParam: "Key", want: "unsupported private key type X25519 (ECDH)"},
		{desc: "unsupported key format", cert: a.CertPEM, key: pemOf("OPENSSH PRIVATE KEY", []byte("openssh-key-v1")), wantParam: "Key", want: "unsupported OPENSSH PRIVATE KEY"},
		{desc: "ECDSA key of another certificate", cert: a.CertPEM, key: b.KeyPEM, wantParam: "Key", want: "the private key does not match the certificate's public key"},
		{desc: "RSA key of another certificate", cert: rsaA.CertPEM, key: rsaB.KeyPEM, wantParam: "Key", want: "the private key does not match the certificate's public key; "},
		{desc: "key of another type", cert: rsaA.CertPEM, key: a.KeyPEM, wantParam: "Key", want: "the private key does not match the certificate's public key (the certificate has an RSA key, the private key is ECDSA)"},
		{desc: "two keys", cert: a.CertPEM, key: a.KeyPEM + a.KeyPEM, wantParam: "Key", want: "holds 2 private keys"},
		{desc: "key then certificate", cert: a.CertPEM, key: a.KeyPEM + a.LeafPEM, wantParam: "Key", want: "block 2 is a CERTIFICATE"},
		{desc: "garbage after key", cert: a.CertPEM, key: a.KeyPEM + "Bag Attributes\n", wantParam: "Key", want: "unexpected text after block 1"},
		{desc: "EC PARAMETERS alone", cert: a.CertPEM, key: pemOf("EC PARAMETERS", []byte{6, 0}), wantParam: "Key", want: "no private key block found"},
		{desc: "key too large", cert: a.CertPEM, key: a.KeyPEM + strings.Repeat("\n", 16<<10), wantParam: "Key", want: "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			p, err := certs.Parse(tt.cert, tt.key)
			if err == nil {
				t.Fatalf("Parse succeeded (%v), want an error", p.Leaf.Subject)
			}
			var e *certs.Error
			if !errors.As(err, &e) {
				t.Fatalf("Parse error %T %v, want *certs.Error", err, err)
			}
			if e.Param != tt.wantParam || !strings.Contains(e.Message, tt.want) {
				t.Errorf("Parse error = %q, want Param %q and a message containing %q", err, tt.wantParam, tt.want)
			}
			if want := e.Param + ": " + e.Message; err.Error() != want {
				t.Errorf("Error() = %q, want %q", err.Error(), want)
			}
			if tt.wantParam == "Cert" {
				if _, _, err := certs.ParseChain(tt.cert); err == nil || err.Error() != e.Error() {
					t.Errorf("ParseChain error = %v, want %v", err, e)
				}
			}
		})
	}
}

func TestInfo(t *testing.T) {
	t.Parallel()
	c := certstest.New(t, certstest.Options{
		CommonName: "www.example.test",
		DNSNames:   []string{"www.example.test", "127.0.0.1", "WWW.example.test", "*.example.test", "::1", "127.0.0.1", "api.example.test"},
	})
	p, err := certs.Parse(c.CertPEM, c.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	sha1Sum := sha1.Sum(c.Leaf.Raw)
	sha2Sum := sha256.Sum256(c.Leaf.Raw)
	want := certs.Info{
		CommonName:  "www.example.test",
		SANs:        []string{"www.example.test", "*.example.test", "api.example.test", "127.0.0.1", "::1"},
		Issuer:      "certstest Intermediate CA",
		Fingerprint: strings.ToUpper(hex.EncodeToString(sha1Sum[:])),
		Sha2:        strings.ToUpper(hex.EncodeToString(sha2Sum[:])),
		SerialNo:    hex.EncodeToString(c.Leaf.SerialNumber.Bytes()),
		Algorithm:   "ECC",
		NotBefore:   c.Leaf.NotBefore,
		NotAfter:    c.Leaf.NotAfter,
	}
	if !reflect.DeepEqual(p.Info, want) {
		t.Errorf("Info =\n%+v\nwant\n%+v", p.Info, want)
	}
	if len(p.Info.Fingerprint) != 40 || len(p.Info.Sha2) != 64 {
		t.Errorf("Fingerprint %q, Sha2 %q: want 40 and 64 hex digits", p.Info.Fingerprint, p.Info.Sha2)
	}
}

func TestInfoOf(t *testing.T) {
	t.Parallel()
	serial := func(s string) *big.Int {
		n, ok := new(big.Int).SetString(s, 16)
		if !ok {
			t.Fatalf("bad serial %q", s)
		}
		return n
	}
	subject := pkix.Name{
		CommonName:   "shop.example.test",
		Organization: []string{"Example Ltd"},
		Country:      []string{"CN"},
		Province:     []string{"Zhejiang"},
		Locality:     []string{"Hangzhou"},
	}
	tests := []struct {
		desc string
		tmpl x509.Certificate
		want certs.Info // only the fields below are compared
	}{
		{
			desc: "subject fields and serial with a leading zero nibble",
			tmpl: x509.Certificate{SerialNumber: serial("040a6e493cffdda6d744acf99b6576cf"), Subject: subject, DNSNames: []string{"shop.example.test"}},
			want: certs.Info{
				CommonName: "shop.example.test", SANs: []string{"shop.example.test"}, Issuer: "shop.example.test",
				OrgName: "Example Ltd", Country: "CN", Province: "Zhejiang", City: "Hangzhou",
				SerialNo: "040a6e493cffdda6d744acf99b6576cf",
			},
		},
		{
			desc: "odd-length serial is left-padded",
			tmpl: x509.Certificate{SerialNumber: serial("abc"), Subject: pkix.Name{CommonName: "x.test"}, DNSNames: []string{"x.test"}},
			want: certs.Info{CommonName: "x.test", SANs: []string{"x.test"}, Issuer: "x.test", SerialNo: "0abc"},
		},
		{
			desc: "serial with the high bit set",
			tmpl: x509.Certificate{SerialNumber: serial("80"), Subject: pkix.Name{CommonName: "x.test"}, DNSNames: []string{"x.test"}},
			want: certs.Info{CommonName: "x.test", SANs: []string{"x.test"}, Issuer: "x.test", SerialNo: "80"},
		},
		{
			desc: "no SAN: CommonName",
			tmpl: x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "legacy.test"}},
			want: certs.Info{CommonName: "legacy.test", SANs: []string{"legacy.test"}, Issuer: "legacy.test", SerialNo: "01"},
		},
		{
			desc: "no SAN, no CommonName; issuer by Organization",
			tmpl: x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{Organization: []string{"Org Only"}}},
			want: certs.Info{OrgName: "Org Only", Issuer: "Org Only", SerialNo: "02"},
		},
		{
			desc: "issuer by distinguished name",
			tmpl: x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{Country: []string{"CN"}, Locality: []string{"Hangzhou"}}, IPAddresses: []net.IP{net.ParseIP("192.0.2.1")}},
			want: certs.Info{SANs: []string{"192.0.2.1"}, Issuer: "L=Hangzhou,C=CN", Country: "CN", City: "Hangzhou", SerialNo: "03"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			leaf := selfSigned(t, &tt.tmpl).cert
			got := certs.InfoOf(leaf)
			got.Fingerprint, got.Sha2, got.Algorithm, got.NotBefore, got.NotAfter = "", "", "", time.Time{}, time.Time{}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("InfoOf =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	t.Parallel()
	sans := []string{"Example.COM", "*.example.com", "www.example.org.", "10.0.0.1", "2001:db8::1"}
	tests := []struct {
		desc   string
		sans   []string
		domain string
		want   bool
	}{
		{desc: "exact", sans: sans, domain: "example.com", want: true},
		{desc: "case-insensitive", sans: sans, domain: "WWW.EXAMPLE.ORG", want: true},
		{desc: "trailing dot on the domain", sans: sans, domain: "example.com.", want: true},
		{desc: "trailing dot on the SAN", sans: sans, domain: "www.example.org", want: true},
		{desc: "wildcard covers one label", sans: sans, domain: "a.example.com", want: true},
		{desc: "wildcard covers one label, any case", sans: sans, domain: "A.Example.Com", want: true},
		{desc: "wildcard does not cover two labels", sans: sans, domain: "a.b.example.com", want: false},
		{desc: "wildcard does not cover the apex", sans: []string{"*.example.com"}, domain: "example.com", want: false},
		{desc: "wildcard does not cover an empty label", sans: []string{"*.example.com"}, domain: ".example.com", want: false},
		{desc: "wildcard does not cover a lookalike", sans: []string{"*.example.com"}, domain: "aexample.com", want: false},
		{desc: "wildcard domain matches the same wildcard", sans: sans, domain: "*.example.com", want: true},
		{desc: "wildcard domain is not covered by a name", sans: []string{"a.example.com"}, domain: "*.example.com", want: false},
		{desc: "no match", sans: sans, domain: "example.net", want: false},
		{desc: "suffix is not a match", sans: sans, domain: "notexample.com", want: false},
		{desc: "IP address", sans: sans, domain: "10.0.0.1", want: true},
		{desc: "IPv6 address in another spelling", sans: sans, domain: "2001:DB8:0::1", want: true},
		{desc: "other IP address", sans: sans, domain: "10.0.0.2", want: false},
		{desc: "empty domain", sans: sans, domain: "", want: false},
		{desc: "dot domain", sans: sans, domain: ".", want: false},
		{desc: "empty SAN covers nothing", sans: []string{""}, domain: "", want: false},
		{desc: "no SANs", sans: nil, domain: "example.com", want: false},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := certs.Covers(tt.sans, tt.domain); got != tt.want {
				t.Errorf("Covers(%q, %q) = %v, want %v", tt.sans, tt.domain, got, tt.want)
			}
		})
	}
}

func TestDomainType(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		sans []string
		want string
	}{
		{desc: "one name", sans: []string{"example.com"}, want: "ONE"},
		{desc: "one IP address", sans: []string{"10.0.0.1"}, want: "ONE"},
		{desc: "one wildcard", sans: []string{"*.example.com"}, want: "WILDCARD"},
		{desc: "several names", sans: []string{"example.com", "www.example.com"}, want: "MULTIPLE"},
		{desc: "several wildcards", sans: []string{"*.example.com", "*.example.org"}, want: "M_WILDCARD"},
		{desc: "names and wildcards", sans: []string{"example.com", "*.example.com"}, want: "MIX"},
		{desc: "one name spelled twice", sans: []string{"example.com", "EXAMPLE.com."}, want: "ONE"},
		{desc: "none", sans: nil, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := certs.DomainType(tt.sans); got != tt.want {
				t.Errorf("DomainType(%q) = %q, want %q", tt.sans, got, tt.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	c := certstest.New(f, certstest.Options{})
	ed := certstest.New(f, certstest.Options{KeyType: "ed25519"})
	f.Add(c.CertPEM, c.KeyPEM)
	f.Add(ed.CertPEM+c.RootPEM, ed.KeyPEM)
	f.Add(c.IntermediatePEM+c.LeafPEM, c.KeyPEM+c.KeyPEM)
	f.Add(c.LeafPEM+"x"+c.IntermediatePEM, "-----BEGIN EC PARAMETERS-----\nBggqhkjOPQMBBw==\n-----END EC PARAMETERS-----\n"+ed.KeyPEM)
	f.Add("-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "-----BEGIN PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n\nAA==\n-----END PRIVATE KEY-----\n")
	f.Add("", "")
	f.Fuzz(func(t *testing.T, certPEM, keyPEM string) {
		p, err := certs.Parse(certPEM, keyPEM)
		if err != nil {
			var e *certs.Error
			if !errors.As(err, &e) || (e.Param != "Cert" && e.Param != "Key") || e.Message == "" {
				t.Fatalf("Parse error %T %q: want *certs.Error for Cert or Key", err, err)
			}
			for line := range strings.SplitSeq(keyPEM, "\n") { // the key's material never appears in a message
				line = strings.TrimSpace(line)
				if len(line) >= 16 && !strings.HasPrefix(line, "-----") && !strings.Contains(certPEM, line) && strings.Contains(err.Error(), line) {
					t.Fatalf("Parse error shows a line of the key %q: %v", line, err)
				}
			}
		} else {
			again, err := certs.Parse(p.CertPEM, p.KeyPEM)
			if err != nil {
				t.Fatalf("Parse(normalized) failed: %v", err)
			}
			if again.Info.Fingerprint != p.Info.Fingerprint {
				t.Fatalf("Parse(normalized) fingerprint %s, want %s", again.Info.Fingerprint, p.Info.Fingerprint)
			}
			certs.DomainType(p.Info.SANs)
		}
		if _, _, err := certs.ParseChain(certPEM); err != nil {
			var e *certs.Error
			if !errors.As(err, &e) || e.Param != "Cert" {
				t.Fatalf("ParseChain error %T %q: want *certs.Error for Cert", err, err)
			}
		}
		certs.Covers(strings.Fields(certPEM), keyPEM)
		certs.DomainType(strings.Fields(keyPEM))
	})
}

type selfSignedCert struct {
	cert            *x509.Certificate
	certPEM, keyPEM string
}

// selfSigned makes tmpl a self-signed certificate with a fresh ECDSA key.
func selfSigned(t *testing.T, tmpl *x509.Certificate) selfSignedCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.SerialNumber == nil {
		tmpl.SerialNumber = big.NewInt(1)
	}
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return selfSignedCert{cert: cert, certPEM: pemOf("CERTIFICATE", der), keyPEM: pemOf("PRIVATE KEY", keyDER)}
}

func pemOf(blockType string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))
}

func derOf(t *testing.T, s string) []byte {
	t.Helper()
	b, _ := pem.Decode([]byte(s))
	if b == nil {
		t.Fatalf("no PEM block in %q", s)
	}
	return b.Bytes
}
