package issuance

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// KeyTypes are the key types an issuer may generate, EC256 the default.
var KeyTypes = []string{"EC256", "EC384", "RSA2048", "RSA3072", "RSA4096"}

// GenerateKey returns a new private key of keyType (one of KeyTypes).
func GenerateKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "", "EC256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EC384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "RSA2048":
		return rsa.GenerateKey(rand.Reader, 2048)
	case "RSA3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "RSA4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	}
	return nil, fmt.Errorf("key type %q is not one of %s", keyType, strings.Join(KeyTypes, ", "))
}

// EncodeKey encodes a private key as PKCS#8 PEM.
func EncodeKey(k crypto.Signer) (string, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})), nil
}

// ParseKey decodes a PEM private key (PKCS#8, PKCS#1 or SEC 1).
func ParseKey(keyPEM string) (crypto.Signer, error) {
	block, _ := pem.Decode([]byte(keyPEM))
	if block == nil {
		return nil, errors.New("no PEM block in the key")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
		return nil, errors.New("the key is not a signing key")
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, errors.New("the key is not PKCS#8, PKCS#1 or SEC 1")
}

// Subject is what a generated CSR names besides its DNS names.
type Subject struct {
	CommonName, Org, Unit, Country, Province, Locality string
}

// CreateCSR returns a PEM CSR for names (the first is the CommonName when s
// gives none) signed by key.
func CreateCSR(key crypto.Signer, names []string, s Subject) (string, error) {
	cn := s.CommonName
	if cn == "" && len(names) > 0 && len(names[0]) <= 64 {
		cn = names[0]
	}
	tmpl := &x509.CertificateRequest{Subject: pkix.Name{CommonName: cn}, DNSNames: names}
	if s.Org != "" {
		tmpl.Subject.Organization = []string{s.Org}
	}
	if s.Unit != "" {
		tmpl.Subject.OrganizationalUnit = []string{s.Unit}
	}
	if s.Country != "" {
		tmpl.Subject.Country = []string{s.Country}
	}
	if s.Province != "" {
		tmpl.Subject.Province = []string{s.Province}
	}
	if s.Locality != "" {
		tmpl.Subject.Locality = []string{s.Locality}
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, tmpl, key)
	if err != nil {
		return "", err
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})), nil
}

// CSRInfo is what a CSR says.
type CSRInfo struct {
	CSR        *x509.CertificateRequest
	Names      []string // CommonName (when a DNS name) then DNS SANs, deduplicated, lower case
	CommonName string
	Algorithm  string // RSA or ECC
	KeySize    int
	KeySha2    string // hex SHA-256 of the public key's DER
}

// ParseCSR parses and checks a PEM CSR (its signature, at least one name).
func ParseCSR(csrPEM string) (CSRInfo, error) {
	block, _ := pem.Decode([]byte(strings.TrimSpace(csrPEM)))
	if block == nil || !strings.Contains(block.Type, "CERTIFICATE REQUEST") {
		return CSRInfo{}, errors.New("not a PEM certificate request (-----BEGIN CERTIFICATE REQUEST-----)")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return CSRInfo{}, fmt.Errorf("does not parse: %v", err)
	}
	if err := csr.CheckSignature(); err != nil {
		return CSRInfo{}, fmt.Errorf("its signature does not verify: %v", err)
	}
	info := CSRInfo{CSR: csr, CommonName: csr.Subject.CommonName}
	seen := map[string]bool{}
	add := func(n string) {
		n = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(n), "."))
		if n != "" && !seen[n] && strings.Contains(n, ".") && !strings.ContainsAny(n, " /:@") {
			seen[n] = true
			info.Names = append(info.Names, n)
		}
	}
	add(csr.Subject.CommonName)
	for _, n := range csr.DNSNames {
		add(n)
	}
	if len(info.Names) == 0 {
		return CSRInfo{}, errors.New("names no domain (neither its CommonName nor a DNS SAN)")
	}
	switch k := csr.PublicKey.(type) {
	case *rsa.PublicKey:
		info.Algorithm, info.KeySize = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		info.Algorithm, info.KeySize = "ECC", k.Curve.Params().BitSize
	default:
		return CSRInfo{}, errors.New("its key is neither RSA nor ECDSA")
	}
	pub, _ := x509.MarshalPKIXPublicKey(csr.PublicKey)
	sum := sha256.Sum256(pub)
	info.KeySha2 = hex.EncodeToString(sum[:])
	return info, nil
}

// KeyMatches says whether key is the private key of csr.
func KeyMatches(key crypto.Signer, csr *x509.CertificateRequest) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	e, ok := key.Public().(equaler)
	return ok && e.Equal(csr.PublicKey)
}
