package certs

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"net/netip"
	"strings"
	"time"
)

// Info is what the API reports about a certificate, computed from its leaf.
type Info struct {
	CommonName string
	// SANs are the DNS names, then the IP addresses, without duplicates
	// (DNS names compared case-insensitively), in certificate order. A leaf
	// without DNS or IP SANs gets its CommonName alone, or none if that is
	// empty too.
	SANs []string
	// Issuer is the issuer's CommonName, else its first Organization, else
	// its whole distinguished name.
	Issuer string
	// OrgName, Country, Province and City are the first values of the
	// leaf's Subject O, C, ST and L, or "".
	OrgName, Country, Province, City string
	Fingerprint                      string // SHA-1 of the leaf DER, upper-case hex, no separators
	Sha2                             string // SHA-256 of the leaf DER, upper-case hex, no separators
	// SerialNo is the serial number's big-endian bytes in lower-case hex,
	// so always of even length, as Alibaba Cloud shows it
	// (040a6e493cffdda6d744acf99b6576cf).
	SerialNo string
	// Algorithm is the leaf public key's: "RSA", "ECC" (ECDSA) or "Ed25519";
	// for any other, x509's name for it.
	Algorithm           string
	NotBefore, NotAfter time.Time
}

// InfoOf computes Info for a leaf certificate.
func InfoOf(leaf *x509.Certificate) Info {
	sha1Sum := sha1.Sum(leaf.Raw)
	sha2Sum := sha256.Sum256(leaf.Raw)
	info := Info{
		CommonName:  leaf.Subject.CommonName,
		SANs:        sansOf(leaf),
		Issuer:      issuerOf(leaf),
		OrgName:     first(leaf.Subject.Organization),
		Country:     first(leaf.Subject.Country),
		Province:    first(leaf.Subject.Province),
		City:        first(leaf.Subject.Locality),
		Fingerprint: strings.ToUpper(hex.EncodeToString(sha1Sum[:])),
		Sha2:        strings.ToUpper(hex.EncodeToString(sha2Sum[:])),
		SerialNo:    "00",
		Algorithm:   leaf.PublicKeyAlgorithm.String(),
		NotBefore:   leaf.NotBefore,
		NotAfter:    leaf.NotAfter,
	}
	if leaf.SerialNumber != nil && leaf.SerialNumber.Sign() != 0 {
		info.SerialNo = hex.EncodeToString(leaf.SerialNumber.Bytes())
	}
	switch leaf.PublicKey.(type) {
	case *rsa.PublicKey:
		info.Algorithm = "RSA"
	case *ecdsa.PublicKey:
		info.Algorithm = "ECC"
	case ed25519.PublicKey:
		info.Algorithm = "Ed25519"
	}
	return info
}

func sansOf(leaf *x509.Certificate) []string {
	var sans []string
	seen := make(map[string]bool)
	add := func(name, key string) {
		if name != "" && !seen[key] {
			seen[key] = true
			sans = append(sans, name)
		}
	}
	for _, n := range leaf.DNSNames {
		add(n, strings.ToLower(n))
	}
	for _, ip := range leaf.IPAddresses {
		s := ip.String()
		add(s, s)
	}
	if len(sans) == 0 && leaf.Subject.CommonName != "" {
		sans = []string{leaf.Subject.CommonName}
	}
	return sans
}

func issuerOf(leaf *x509.Certificate) string {
	switch {
	case leaf.Issuer.CommonName != "":
		return leaf.Issuer.CommonName
	case len(leaf.Issuer.Organization) > 0 && leaf.Issuer.Organization[0] != "":
		return leaf.Issuer.Organization[0]
	}
	return leaf.Issuer.String()
}

func first(values []string) string {
	if len(values) == 0 {
		return ""
	}
	return values[0]
}

// Covers reports whether a certificate with these SANs is valid for domain.
// Names compare case-insensitively and ignoring a trailing dot; IP addresses
// compare as addresses. A SAN "*.example.com" covers exactly one more label:
// "a.example.com", but neither "a.b.example.com" nor "example.com". An empty
// domain is never covered.
func Covers(sans []string, domain string) bool {
	domain = normalizeName(domain)
	if domain == "" {
		return false
	}
	if ip, err := netip.ParseAddr(domain); err == nil {
		for _, san := range sans {
			if sip, err := netip.ParseAddr(normalizeName(san)); err == nil && sip.Unmap() == ip.Unmap() {
				return true
			}
		}
		return false
	}
	for _, san := range sans {
		san = normalizeName(san)
		if san == "" {
			continue
		}
		if san == domain {
			return true
		}
		if suffix, ok := strings.CutPrefix(san, "*."); ok && suffix != "" {
			label, ok := strings.CutSuffix(domain, "."+suffix)
			if ok && label != "" && !strings.Contains(label, ".") {
				return true
			}
		}
	}
	return false
}

// DomainType returns Alibaba Cloud's DomainType for a certificate's SANs:
// ONE for a single name that is not a wildcard, WILDCARD for a single
// wildcard, MULTIPLE for several names none of which is a wildcard,
// M_WILDCARD for several that all are, and MIX for several of both kinds.
// Names are counted once however they are spelled (case, trailing dot); with
// no names at all it returns "".
func DomainType(sans []string) string {
	seen := make(map[string]bool)
	names, wild := 0, 0
	for _, san := range sans {
		san = normalizeName(san)
		if san == "" || seen[san] {
			continue
		}
		seen[san] = true
		names++
		if strings.HasPrefix(san, "*.") {
			wild++
		}
	}
	switch {
	case names == 0:
		return ""
	case names == 1 && wild == 1:
		return "WILDCARD"
	case names == 1:
		return "ONE"
	case wild == names:
		return "M_WILDCARD"
	case wild == 0:
		return "MULTIPLE"
	}
	return "MIX"
}

func normalizeName(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}
