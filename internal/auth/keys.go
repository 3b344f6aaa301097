package auth

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"time"
)

// NewAccessKey returns a fresh AccessKeyId ("CF" and 20 upper-case hex
// characters) and secret (32 base64url characters, 192 random bits). It is
// the one generator of access keys: root keys made at a server's first start,
// RAM CreateAccessKey and `certfleet account create` all call it.
func NewAccessKey() (id, secret string) {
	idb := make([]byte, 10)
	sb := make([]byte, 24)
	rand.Read(idb) // never fails (crypto/rand panics instead)
	rand.Read(sb)
	return "CF" + strings.ToUpper(hex.EncodeToString(idb)), base64.RawURLEncoding.EncodeToString(sb)
}

// NonceExpiry is when a nonce sent with a request signed at ts may be
// forgotten: after it, Verify refuses the request for its timestamp anyway
// (MaxSkew), so a replay cannot pass. It keeps a minute's margin.
func NonceExpiry(ts time.Time) time.Time { return ts.Add(MaxSkew + time.Minute) }
