package secret

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
)

// sealedField is the key of the marker object that replaces a secret value
// inside a stored Config: {"$sealed": "<base64 of the sealed JSON value>"}.
const sealedField = "$sealed"

// Masked is what answers show instead of a secret Config value.
const Masked = "******"

// SealConfig returns config (a JSON object; empty stays empty) with the
// value of every top-level key for which secret reports true (a product
// description's Secret fields) sealed under PurposeConfigSecret and replaced
// by a marker object. Values already sealed are kept. Other keys and the
// JSON text of non-secret values are unchanged.
func (b *Box) SealConfig(config string, secret func(key string) bool) (string, error) {
	m, err := configObject(config)
	if m == nil || err != nil {
		return config, err
	}
	changed := false
	for k, v := range m {
		if !secret(k) || isSealed(v) || bytes.Equal(bytes.TrimSpace(v), []byte("null")) {
			continue
		}
		sealed := base64.StdEncoding.EncodeToString(b.Seal(v, PurposeConfigSecret))
		m[k], _ = json.Marshal(map[string]string{sealedField: sealed})
		changed = true
	}
	if !changed {
		return config, nil
	}
	out, err := json.Marshal(m)
	return string(out), err
}

// OpenConfig returns config with every sealed value (SealConfig) opened: what
// a deployer is given. A config without sealed values is returned as is.
func (b *Box) OpenConfig(config string) (string, error) {
	if !strings.Contains(config, sealedField) {
		return config, nil
	}
	m, err := configObject(config)
	if m == nil || err != nil {
		return config, err
	}
	for k, v := range m {
		if !isSealed(v) {
			continue
		}
		var marker map[string]string
		_ = json.Unmarshal(v, &marker)
		raw, err := base64.StdEncoding.DecodeString(marker[sealedField])
		if err != nil {
			return "", fmt.Errorf("secret: Config key %s: %w", k, err)
		}
		plain, err := b.Open(raw, PurposeConfigSecret)
		if err != nil {
			return "", fmt.Errorf("secret: Config key %s: %w", k, err)
		}
		m[k] = plain
	}
	out, err := json.Marshal(m)
	return string(out), err
}

// MaskConfig returns config with every sealed value replaced by Masked: what
// list and describe answers show.
func MaskConfig(config string) string {
	if !strings.Contains(config, sealedField) {
		return config
	}
	m, err := configObject(config)
	if m == nil || err != nil {
		return config
	}
	for k, v := range m {
		if isSealed(v) {
			m[k], _ = json.Marshal(Masked)
		}
	}
	out, _ := json.Marshal(m)
	return string(out)
}

// KeepSealed returns update with every key whose value is Masked (a client
// sending back what it was shown) given its sealed value from old, so that
// updating other keys does not erase a secret.
func KeepSealed(old, update string) string {
	if !strings.Contains(update, Masked) {
		return update
	}
	o, _ := configObject(old)
	u, err := configObject(update)
	if u == nil || err != nil {
		return update
	}
	masked, _ := json.Marshal(Masked)
	for k, v := range u {
		if bytes.Equal(bytes.TrimSpace(v), masked) && isSealed(o[k]) {
			u[k] = o[k]
		}
	}
	out, _ := json.Marshal(u)
	return string(out)
}

func configObject(config string) (map[string]json.RawMessage, error) {
	if strings.TrimSpace(config) == "" {
		return nil, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(config), &m); err != nil {
		return nil, fmt.Errorf("secret: Config is not a JSON object: %w", err)
	}
	return m, nil
}

func isSealed(v json.RawMessage) bool {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(v, &m) != nil || len(m) != 1 {
		return false
	}
	_, ok := m[sealedField]
	return ok
}
