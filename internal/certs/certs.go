// Package certs validates certificate uploads and computes the facts the API
// reports about a certificate.
//
// Parse takes the Cert and Key parameters of UploadUserCertificate. It checks
// that they are clean PEM, that the chain chains and that the key belongs to
// the leaf. It returns normalized PEM and the leaf's Info: names, issuer,
// fingerprints, serial number, algorithm and validity, as
// ListUserCertificateOrder and GetUserCertificateDetail report them. Covers
// and DomainType answer questions about a certificate's names.
//
// The package is not for storage or encryption: it never seals a key, writes a
// file or talks to a database. It does not verify a chain against trusted
// roots, check revocation or reject expired certificates either. Deciding what
// to do with an expired upload is the caller's business. Everything here is
// pure computation and safe for concurrent use.
package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/asn1"
	"encoding/pem"
	"fmt"
	"strings"
)

// Size limits for uploads.
const (
	maxCertPEMBytes = 64 << 10
	maxCerts        = 10
	maxKeyPEMBytes  = 16 << 10
)

// PEM block types.
const (
	blockCertificate  = "CERTIFICATE"
	blockPKCS1        = "RSA PRIVATE KEY"
	blockPKCS8        = "PRIVATE KEY"
	blockSEC1         = "EC PRIVATE KEY"
	blockEncrypted    = "ENCRYPTED PRIVATE KEY"
	blockECParameters = "EC PARAMETERS"
)

// Error is a problem with one upload parameter. Param is the API parameter at
// fault, "Cert" or "Key"; Message says what is wrong and, where it can, what
// to do, in words fit to show the user who uploaded it.
type Error struct {
	Param   string
	Message string
}

// Error returns Param + ": " + Message.
func (e *Error) Error() string { return e.Param + ": " + e.Message }

func certErr(format string, args ...any) *Error {
	return &Error{Param: "Cert", Message: fmt.Sprintf(format, args...)}
}

func keyErr(format string, args ...any) *Error {
	return &Error{Param: "Key", Message: fmt.Sprintf(format, args...)}
}

// Parsed is a validated certificate upload.
type Parsed struct {
	Leaf  *x509.Certificate
	Chain []*x509.Certificate // intermediates after the leaf, in order; nil if none
	// CertPEM is LeafPEM followed by ChainPEM. Each certificate is encoded as
	// "-----BEGIN CERTIFICATE-----\n<base64, 64 columns>\n-----END CERTIFICATE-----\n",
	// without PEM headers.
	CertPEM  string
	LeafPEM  string
	ChainPEM string // "" when there is no chain
	// KeyPEM is the private key re-encoded from its DER under its original
	// block type ("RSA PRIVATE KEY", "PRIVATE KEY" or "EC PRIVATE KEY"),
	// without headers or any "EC PARAMETERS" block.
	KeyPEM string
	Info   Info
}

// Parse validates an upload: certPEM holds the leaf certificate followed by
// its chain, keyPEM the leaf's private key, both in PEM.
//
// The certificates must be CERTIFICATE blocks and each must be signed by the
// one after it. The key may be PKCS#1 ("RSA PRIVATE KEY"), PKCS#8 ("PRIVATE
// KEY") or SEC1 ("EC PRIVATE KEY"), holding an RSA, ECDSA or Ed25519 key; an
// "EC PARAMETERS" block before a SEC1 key, as openssl ecparam writes it, is
// accepted and dropped. The key must match the leaf's public key. Only PEM
// blocks and whitespace may appear in either parameter. certPEM may be at most
// 64 KiB and hold at most 10 certificates; keyPEM may be at most 16 KiB.
//
// Every error is an *Error naming the parameter at fault.
func Parse(certPEM, keyPEM string) (*Parsed, error) { return Policy{}.Parse(certPEM, keyPEM) }

// Policy is what uploads accept beyond Parse's format rules. The zero value
// is the default: RSA keys of at least 2048 bits, ECDSA keys on P-256, P-384
// or P-521, and Ed25519.
type Policy struct {
	// AllowRSA1024 accepts RSA keys of 1024 bits and more, for legacy
	// devices (serve --allow-rsa-1024).
	AllowRSA1024 bool
}

// Parse is the package's Parse under p: it also refuses weak keys, with an
// *Error naming "Key".
func (p Policy) Parse(certPEM, keyPEM string) (*Parsed, error) {
	parsed, err := parse(certPEM, keyPEM)
	if err != nil {
		return nil, err
	}
	if err := p.checkKey(parsed.Leaf.PublicKey); err != nil {
		return nil, err
	}
	return parsed, nil
}

// checkKey refuses an RSA key shorter than the policy allows and an ECDSA
// curve other than P-256, P-384 and P-521.
func (p Policy) checkKey(pub crypto.PublicKey) error {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		min := 2048
		if p.AllowRSA1024 {
			min = 1024
		}
		if bits := k.N.BitLen(); bits < min {
			hint := "; issue the certificate with an RSA key of 2048 bits or more, or an ECDSA P-256 key"
			if !p.AllowRSA1024 && bits >= 1024 {
				hint += " (a server started with --allow-rsa-1024 accepts 1024-bit keys for legacy devices)"
			}
			return keyErr("the RSA key has %d bits, fewer than the %d accepted%s", bits, min, hint)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return keyErr("the ECDSA key is on curve %s; only P-256, P-384 and P-521 are accepted", k.Curve.Params().Name)
		}
	}
	return nil
}

func parse(certPEM, keyPEM string) (*Parsed, error) {
	leaf, chain, err := ParseChain(certPEM)
	if err != nil {
		return nil, err
	}
	keyType, keyDER, key, err := parseKey(keyPEM)
	if err != nil {
		return nil, err
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(leaf.PublicKey) {
		msg := "the private key does not match the certificate's public key"
		if ck, kk := keyKind(leaf.PublicKey), keyKind(key.Public()); ck != kk {
			msg += fmt.Sprintf(" (the certificate has an %s key, the private key is %s)", ck, kk)
		}
		return nil, keyErr("%s; upload the key the certificate was issued for", msg)
	}

	p := &Parsed{
		Leaf:    leaf,
		Chain:   chain,
		LeafPEM: encodePEM(blockCertificate, leaf.Raw),
		KeyPEM:  encodePEM(keyType, keyDER),
		Info:    InfoOf(leaf),
	}
	var b strings.Builder
	for _, c := range chain {
		b.WriteString(encodePEM(blockCertificate, c.Raw))
	}
	p.ChainPEM = b.String()
	p.CertPEM = p.LeafPEM + p.ChainPEM
	return p, nil
}

// ParseChain parses a certificate PEM, leaf first and then its chain, with
// the rules of Parse. It is for certificates already stored, and for callers
// that have no key. Errors are *Error with Param "Cert".
func ParseChain(certPEM string) (leaf *x509.Certificate, chain []*x509.Certificate, err error) {
	if len(certPEM) > maxCertPEMBytes {
		return nil, nil, certErr("too large (%d bytes); the limit is 64 KiB", len(certPEM))
	}
	blocks, err := decodeAll(certPEM, "Cert", "paste the certificate in PEM form, starting with -----BEGIN CERTIFICATE-----")
	if err != nil {
		return nil, nil, err
	}
	if len(blocks) > maxCerts {
		return nil, nil, certErr("holds %d certificates; the limit is %d: upload the leaf and its intermediate certificates only", len(blocks), maxCerts)
	}
	parsed := make([]*x509.Certificate, len(blocks))
	for i, b := range blocks {
		if b.Type != blockCertificate {
			hint := ""
			if isKeyBlock(b.Type) {
				hint = "; put the private key in Key"
			}
			return nil, nil, certErr("block %d is a %s block, not a CERTIFICATE%s", i+1, b.Type, hint)
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, certErr("block %d is not a valid X.509 certificate: %s", i+1, cleanErr(err))
		}
		parsed[i] = c
	}
	for i := 0; i+1 < len(parsed); i++ {
		child, parent := parsed[i], parsed[i+1]
		err := child.CheckSignatureFrom(parent)
		if err == nil {
			continue
		}
		hint := "put the leaf first, then each issuer right after the certificate it signed"
		if parent.CheckSignatureFrom(child) == nil {
			hint = "the certificates look reversed: " + hint
		}
		return nil, nil, certErr("certificate %d (%s) is not signed by certificate %d (%s): %v; %s",
			i+1, subjectOf(child), i+2, subjectOf(parent), err, hint)
	}
	if len(parsed) > 1 {
		chain = parsed[1:]
	}
	return parsed[0], chain, nil
}

// parseKey decodes the one private key in keyPEM and returns its block type,
// its DER and the key.
func parseKey(keyPEM string) (string, []byte, crypto.Signer, error) {
	if len(keyPEM) > maxKeyPEMBytes {
		return "", nil, nil, keyErr("too large (%d bytes); the limit is 16 KiB", len(keyPEM))
	}
	blocks, err := decodeAll(keyPEM, "Key", "paste the private key in PEM form, starting with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, or EC PRIVATE KEY)")
	if err != nil {
		return "", nil, nil, err
	}
	var keyBlock *pem.Block
	keys := 0
	for i, b := range blocks {
		switch {
		case b.Type == blockEncrypted || strings.Contains(b.Headers["Proc-Type"], "ENCRYPTED"):
			return "", nil, nil, keyErr("encrypted keys are not supported; decrypt it first (for example: openssl pkey -in key.pem -out key-plain.pem)")
		case b.Type == blockECParameters:
			// openssl ecparam -genkey writes the curve before the key; SEC1
			// keys name their curve themselves.
		case b.Type == blockPKCS1 || b.Type == blockPKCS8 || b.Type == blockSEC1:
			keys++
			keyBlock = b
		case b.Type == blockCertificate:
			return "", nil, nil, keyErr("block %d is a CERTIFICATE, not a private key; put certificates in Cert", i+1)
		case strings.HasSuffix(b.Type, "PRIVATE KEY"):
			return "", nil, nil, keyErr("block %d is an unsupported %s; use PKCS#8 (PRIVATE KEY), PKCS#1 (RSA PRIVATE KEY) or SEC1 (EC PRIVATE KEY)", i+1, b.Type)
		default:
			return "", nil, nil, keyErr("block %d is a %s block, not a private key", i+1, b.Type)
		}
	}
	switch {
	case keys == 0:
		return "", nil, nil, keyErr("no private key block found; paste the private key in PEM form, starting with -----BEGIN PRIVATE KEY----- (or RSA PRIVATE KEY, or EC PRIVATE KEY)")
	case keys > 1:
		return "", nil, nil, keyErr("holds %d private keys; upload exactly one, the key of the leaf certificate", keys)
	}
	key, err := parseKeyDER(keyBlock.Type, keyBlock.Bytes)
	if err != nil {
		return "", nil, nil, err
	}
	return keyBlock.Type, keyBlock.Bytes, key, nil
}

// keyFormats names each key block type's format, for messages.
var keyFormats = map[string]string{
	blockPKCS1: "PKCS#1 RSA",
	blockPKCS8: "PKCS#8",
	blockSEC1:  "SEC1 EC",
}

// parseKeyDER parses der as the format its block type names.
func parseKeyDER(blockType string, der []byte) (crypto.Signer, error) {
	key, err := parseKeyAs(blockType, der)
	if err != nil {
		// A common mistake is a key under the wrong label; say so.
		for _, other := range []string{blockPKCS8, blockPKCS1, blockSEC1} {
			if other == blockType {
				continue
			}
			if _, err := parseKeyAs(other, der); err == nil {
				return nil, keyErr("the %s block holds a %s key; change its BEGIN and END lines to %q",
					blockType, keyFormats[other], other)
			}
		}
		return nil, keyErr("not a valid %s private key: %s", keyFormats[blockType], cleanErr(err))
	}
	var raw asn1.RawValue
	if rest, err := asn1.Unmarshal(der, &raw); err != nil || len(rest) > 0 {
		return nil, keyErr("not a valid %s private key: trailing data after the key", keyFormats[blockType])
	}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	case *ecdh.PrivateKey:
		return nil, keyErr("unsupported private key type %s (ECDH); use RSA, ECDSA or Ed25519", k.Curve())
	}
	return nil, keyErr("unsupported private key type %T; use RSA, ECDSA or Ed25519", key)
}

// cleanErr is err's text for a user: encoding/asn1 errors carry Go struct
// dumps that say nothing to someone who pasted a PEM block.
func cleanErr(err error) string {
	s := err.Error()
	if i := strings.Index(s, "asn1: "); i >= 0 {
		return s[:i] + "malformed DER"
	}
	return s
}

func parseKeyAs(blockType string, der []byte) (any, error) {
	switch blockType {
	case blockPKCS1:
		return x509.ParsePKCS1PrivateKey(der)
	case blockPKCS8:
		return x509.ParsePKCS8PrivateKey(der)
	case blockSEC1:
		return x509.ParseECPrivateKey(der)
	}
	return nil, fmt.Errorf("unknown key block type %q", blockType)
}

// decodeAll splits s into PEM blocks. Only whitespace may surround them; a
// block whose BEGIN line does not lead to a well-formed block is an error,
// where pem.Decode alone would skip it silently. With no block at all the
// error ends with what, which tells the user what to paste.
func decodeAll(s, param, what string) ([]*pem.Block, error) {
	fail := func(format string, args ...any) error {
		return &Error{Param: param, Message: fmt.Sprintf(format, args...)}
	}
	data := []byte(strings.TrimPrefix(s, "\ufeff")) // a byte-order mark from a Windows editor
	var blocks []*pem.Block
	for {
		data = bytes.TrimLeft(data, " \t\r\n")
		if len(data) == 0 {
			break
		}
		n := len(blocks)
		if !bytes.HasPrefix(data, []byte("-----BEGIN ")) {
			if n == 0 && !bytes.Contains(data, []byte("-----BEGIN ")) {
				return nil, fail("no PEM block found; %s", what)
			}
			where := fmt.Sprintf("after block %d", n)
			if n == 0 {
				where = "before the first PEM block"
			}
			return nil, fail("unexpected text %s; only PEM blocks and whitespace are allowed", where)
		}
		b, rest := pem.Decode(data)
		consumed := data[:len(data)-len(rest)]
		if b == nil || bytes.Count(consumed, []byte("-----BEGIN ")) != 1 {
			return nil, fail("block %d is not well-formed PEM; check its BEGIN and END lines and its base64 body", n+1)
		}
		blocks = append(blocks, b)
		data = rest
	}
	if len(blocks) == 0 {
		return nil, fail("no PEM block found; %s", what)
	}
	return blocks, nil
}

func isKeyBlock(blockType string) bool {
	return strings.HasSuffix(blockType, "PRIVATE KEY") || strings.HasSuffix(blockType, "PUBLIC KEY")
}

func encodePEM(blockType string, der []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: blockType, Bytes: der}))
}

func subjectOf(c *x509.Certificate) string {
	if s := c.Subject.String(); s != "" {
		return s
	}
	return "empty subject"
}

// keyKind names a public key's algorithm for messages.
func keyKind(pub crypto.PublicKey) string {
	switch pub.(type) {
	case *rsa.PublicKey:
		return "RSA"
	case *ecdsa.PublicKey:
		return "ECDSA"
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return fmt.Sprintf("%T", pub)
}
