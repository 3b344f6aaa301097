package deploy

import (
	"encoding/json"
	"strings"
	"testing"
)

// fuzzFields are testDesc's keys plus a secret of each type.
var fuzzFields = append(append([]Field(nil), testDesc.Config...),
	Field{Name: "Passphrase", Type: TypeString, Secret: true, Help: "a secret"},
	Field{Name: "PIN", Type: TypeInteger, Secret: true, Help: "a secret number"},
	Field{Name: "Token", Type: TypeStringList, Secret: true, Allowed: []string{"only"}, Help: "secret list"},
)

// FuzzNormalizeFields decodes arbitrary Config objects: no panic, what is
// accepted is a normalized fixed point (normalizing it again gives the same
// bytes, also through Description.NormalizeConfig), and an error never shows
// the value of a secret key.
func FuzzNormalizeFields(f *testing.F) {
	f.Add(`{"Host":"h","Port":"22","Sudo":"TRUE","Names":"a","Endpoints":{"x":1},"Passphrase":"hunter2-secret"}`)
	f.Add(`{"Host":"h","Port":70000,"Passphrase":{"v":"hunter2-secret"}}`)
	f.Add(`{"Host":"h","PIN":"12x-secret-pin","Token":["hunter2-secret"]}`)
	f.Add(`{"Host":"h","Mode":"c","Retries":1.0,"Names":null} trailing`)
	f.Add(` `)
	f.Fuzz(func(t *testing.T, config string) {
		out, err := NormalizeFields("ssh/NGINX", "Config", fuzzFields, json.RawMessage(config))
		if err != nil {
			var m map[string]json.RawMessage
			if json.Unmarshal([]byte(config), &m) != nil {
				return
			}
			for _, name := range []string{"Passphrase", "PIN", "Token"} {
				v := secretText(m[name])
				if len(v) < 6 || !strings.Contains(err.Error(), v) {
					continue
				}
				// The message's own words may spell the value ("secret"):
				// it is shown only if another value in its place is not.
				_, other := NormalizeFields("ssh/NGINX", "Config", fuzzFields, json.RawMessage(strings.ReplaceAll(config, v, otherText(v))))
				if other == nil || !strings.Contains(other.Error(), v) {
					t.Fatalf("error shows the secret %s: %v", name, err)
				}
			}
			return
		}
		again, err := NormalizeFields("ssh/NGINX", "Config", fuzzFields, out)
		if err != nil || string(again) != string(out) {
			t.Fatalf("normalizing %s again: %s, %v", out, again, err)
		}
		d := testDesc
		d.Config = fuzzFields
		if viaDesc, err := d.NormalizeConfig(out); err != nil || string(viaDesc) != string(out) {
			t.Fatalf("NormalizeConfig(%s) = %s, %v", out, viaDesc, err)
		}
	})
}

// otherText is a text as long as v that differs from it at every byte.
func otherText(v string) string {
	b := []byte(v)
	for i := range b {
		if b[i] == 'q' {
			b[i] = 'x'
		} else {
			b[i] = 'q'
		}
	}
	return string(b)
}

// secretText is the longest piece of text a secret value holds.
func secretText(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.Trim(strings.TrimSpace(string(raw)), `{}[]"`)
}
