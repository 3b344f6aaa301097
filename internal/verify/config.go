package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"strconv"
	"time"
)

// The generic resource Config keys, valid for every product.
const (
	KeyAddress      = "VerifyAddress"
	KeyGraceSeconds = "VerifyGraceSeconds"
	KeyAutoRollback = "AutoRollback"
	// KeyAutoRenew (package notify's renewal, in package api) redeploys an
	// uploaded renewal of the resource's certificate by itself.
	KeyAutoRenew = "AutoRenew"
)

// DefaultGrace is the verification grace period when VerifyGraceSeconds is unset.
const DefaultGrace = 30 * time.Second

// MaxGraceSeconds bounds VerifyGraceSeconds.
const MaxGraceSeconds = 600

// maxAddresses bounds how many addresses one resource may name.
const maxAddresses = 32

// Settings are a resource's verification settings, from its Config.
type Settings struct {
	// Addresses are the "host:port" TLS endpoints to check; none means no
	// verification.
	Addresses []string
	// Grace is how long a deployment may take to be served. Defaults to DefaultGrace.
	Grace time.Duration
	// AutoRollback restores the previous state when verification fails.
	// Defaults to true.
	AutoRollback bool
	// AutoRenew is the resource's AutoRenew key; nil when absent (the
	// server's --auto-renew applies).
	AutoRenew *bool
}

// Enabled reports whether the resource asks for verification.
func (s Settings) Enabled() bool { return len(s.Addresses) > 0 }

// SplitConfig takes the generic keys (VerifyAddress, VerifyGraceSeconds,
// AutoRollback, AutoRenew) out of a resource's Config. It returns their settings and
// the Config the product sees, without them: the original bytes when none of
// the keys is present. A Config that is not a JSON object is returned as it
// is, for the product's validator to refuse. Errors name the key.
func SplitConfig(config json.RawMessage) (Settings, json.RawMessage, error) {
	s := Settings{Grace: DefaultGrace, AutoRollback: true}
	trimmed := bytes.TrimSpace(config)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return s, config, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return s, config, nil
	}
	_, a := m[KeyAddress]
	_, g := m[KeyGraceSeconds]
	_, r := m[KeyAutoRollback]
	_, n := m[KeyAutoRenew]
	if !a && !g && !r && !n {
		return s, config, nil
	}
	if raw, ok := m[KeyAddress]; ok {
		addrs, err := parseAddresses(raw)
		if err != nil {
			return s, nil, err
		}
		s.Addresses = addrs
		delete(m, KeyAddress)
	}
	if raw, ok := m[KeyGraceSeconds]; ok {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil || bytes.HasPrefix(bytes.TrimSpace(raw), []byte(`"`)) {
			return s, nil, fmt.Errorf("Config: %s must be a number of seconds", KeyGraceSeconds)
		}
		v, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || v < 1 || v > MaxGraceSeconds {
			return s, nil, fmt.Errorf("Config: %s must be a whole number of seconds from 1 to %d", KeyGraceSeconds, MaxGraceSeconds)
		}
		s.Grace = time.Duration(v) * time.Second
		delete(m, KeyGraceSeconds)
	}
	if raw, ok := m[KeyAutoRollback]; ok {
		if err := json.Unmarshal(raw, &s.AutoRollback); err != nil {
			return s, nil, fmt.Errorf("Config: %s must be true or false", KeyAutoRollback)
		}
		delete(m, KeyAutoRollback)
	}
	if raw, ok := m[KeyAutoRenew]; ok {
		var v bool
		if err := json.Unmarshal(raw, &v); err != nil {
			return s, nil, fmt.Errorf("Config: %s must be true or false", KeyAutoRenew)
		}
		s.AutoRenew = &v
		delete(m, KeyAutoRenew)
	}
	rest, err := json.Marshal(m)
	if err != nil {
		return s, nil, fmt.Errorf("Config: %w", err)
	}
	return s, rest, nil
}

// parseAddresses reads VerifyAddress: one "host:port" string or an array of them.
func parseAddresses(raw json.RawMessage) ([]string, error) {
	var list []string
	var one string
	if err := json.Unmarshal(raw, &one); err == nil {
		list = []string{one}
	} else if err := json.Unmarshal(raw, &list); err != nil {
		return nil, fmt.Errorf(`Config: %s must be "host:port" or an array of them`, KeyAddress)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("Config: %s must name at least one address", KeyAddress)
	}
	if len(list) > maxAddresses {
		return nil, fmt.Errorf("Config: %s names more than %d addresses", KeyAddress, maxAddresses)
	}
	seen := map[string]bool{}
	out := make([]string, 0, len(list))
	for _, addr := range list {
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host == "" {
			return nil, fmt.Errorf(`Config: %s %q is not "host:port"`, KeyAddress, addr)
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("Config: %s %q has no valid port", KeyAddress, addr)
		}
		if !seen[addr] {
			seen[addr] = true
			out = append(out, addr)
		}
	}
	return out, nil
}
