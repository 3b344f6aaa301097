package verify

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/certfleet/certfleet/internal/deploy"
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

// Fields describes the generic keys, for validation, the documentation and
// ListCloudProducts (as CommonConfig).
var Fields = []deploy.Field{
	{Name: KeyAddress, Type: deploy.TypeStringList,
		Help: "A \"host:port\" TLS endpoint serving the resource, or a list of them (at most 32), e.g. [\"web1:443\", \"web2:443\"]: after a deploy each must serve the new certificate (SNI: the resource's Domain)."},
	{Name: KeyGraceSeconds, Type: deploy.TypeInteger, Min: 1, Max: MaxGraceSeconds, Default: "30",
		Help: "Seconds a deployment may take to be served before verification fails."},
	{Name: KeyAutoRollback, Type: deploy.TypeBoolean, Default: "true",
		Help: "Restore the previous certificate when verification fails."},
	{Name: KeyAutoRenew, Type: deploy.TypeBoolean,
		Help: "Deploy an uploaded renewal of the served certificate by itself (default: the server's --auto-renew)."},
}

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

// mayNameGeneric reports whether config may hold a generic key: false
// only when no key's name appears in quotes and no escape could spell one,
// so that a Config without them (most) is not decoded here at all.
func mayNameGeneric(config []byte) bool {
	if bytes.IndexByte(config, '\\') >= 0 {
		return true
	}
	for _, q := range quotedFields {
		if bytes.Contains(config, q) {
			return true
		}
	}
	return false
}

// quotedFields are the generic keys' names in quotes, as JSON spells them.
var quotedFields = func() (q [][]byte) {
	for _, f := range Fields {
		q = append(q, []byte(`"`+f.Name+`"`))
	}
	return q
}()

// SplitConfig takes the generic keys (VerifyAddress, VerifyGraceSeconds,
// AutoRollback, AutoRenew) out of a resource's Config. It returns their settings and
// the Config the product sees, without them: the original bytes when none of
// the keys is present. A Config that is not a JSON object is returned as it
// is, for the product's validator to refuse. Errors name the key.
func SplitConfig(config json.RawMessage) (Settings, json.RawMessage, error) {
	s := Settings{Grace: DefaultGrace, AutoRollback: true}
	trimmed := bytes.TrimSpace(config)
	if len(trimmed) == 0 || trimmed[0] != '{' || !mayNameGeneric(trimmed) {
		return s, config, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &m); err != nil {
		return s, config, nil
	}
	generic := map[string]json.RawMessage{}
	for _, f := range Fields {
		if raw, ok := m[f.Name]; ok {
			generic[f.Name] = raw
			delete(m, f.Name)
		}
	}
	if len(generic) == 0 {
		return s, config, nil
	}
	in, err := json.Marshal(generic)
	if err != nil {
		return s, nil, fmt.Errorf("Config: %w", err)
	}
	var g struct {
		VerifyAddress      []string
		VerifyGraceSeconds int64
		AutoRollback       *bool
		AutoRenew          *bool
	}
	if err := deploy.DecodeFields("every product", "Config", Fields, in, &g); err != nil {
		return s, nil, err
	}
	if _, ok := generic[KeyAddress]; ok {
		addrs, err := checkAddresses(g.VerifyAddress)
		if err != nil {
			return s, nil, err
		}
		s.Addresses = addrs
	}
	if g.VerifyGraceSeconds > 0 {
		s.Grace = time.Duration(g.VerifyGraceSeconds) * time.Second
	}
	if g.AutoRollback != nil {
		s.AutoRollback = *g.AutoRollback
	}
	s.AutoRenew = g.AutoRenew
	rest, err := json.Marshal(m)
	if err != nil {
		return s, nil, fmt.Errorf("Config: %w", err)
	}
	return s, rest, nil
}

// checkAddresses checks VerifyAddress's "host:port" values.
func checkAddresses(list []string) ([]string, error) {
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
