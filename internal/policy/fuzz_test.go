package policy

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// FuzzParse compiles arbitrary policy documents: no panic, errors say they
// are the policy's, evaluation is deterministic, and a statement denying
// everything appended to a document that compiles makes every request denied
// (an explicit Deny always wins).
func FuzzParse(f *testing.F) {
	f.Add(`{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:*","Resource":"*"}]}`)
	f.Add(`{"Version":"1","Statement":[{"Effect":"Allow","Action":["yundun-cert:List*","yundun-cert:Get*"],"Resource":"acs:yundun-cert:*:*:*",` +
		`"Condition":{"IpAddress":{"acs:SourceIp":["10.0.0.0/8","192.0.2.1"]},"Bool":{"acs:SecureTransport":"true"}}}]}`)
	f.Add(`{"Version":"1","Statement":[{"Effect":"Deny","NotAction":"yundun-cert:Describe*","Resource":"*",` +
		`"Condition":{"DateLessThan":{"acs:CurrentTime":"2030-01-01T00:00:00Z"},"StringLike":{"acs:UserAgent":"a*?"}}}]}`)
	f.Add(`{"Statement":[{"Effect":"allow","Action":1,"Resource":true}]}`)
	f.Add(`{"Statement":null}`)
	f.Add(`[`)
	reqs := []Request{
		{Action: "yundun-cert:ListUserCertificateOrder", Resource: "acs:yundun-cert:*:1:*", SourceIP: netip.MustParseAddr("10.1.2.3"), SecureTransport: true,
			Now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Action: "yundun-cert:DeleteUserCertificate", Resource: "acs:yundun-cert:*:1:certificate/5", SourceIP: netip.MustParseAddr("2001:db8::1"),
			Now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)},
		{Action: "ram:CreateUser", Resource: "*"},
	}
	f.Fuzz(func(t *testing.T, text string) {
		d, err := Parse(text)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "policy:") {
				t.Fatalf("error %q does not say it is the policy's", err)
			}
			return
		}
		again, err := Parse(text)
		if err != nil {
			t.Fatalf("second Parse failed: %v", err)
		}
		for _, r := range reqs {
			a, b := Evaluate([]*Document{d}, r), Evaluate([]*Document{again}, r)
			if a != b || a < ImplicitDeny || a > ExplicitDeny {
				t.Fatalf("Evaluate %v then %v for %+v", a, b, r)
			}
		}
		var m map[string]any
		if json.Unmarshal([]byte(text), &m) != nil {
			return
		}
		seen := map[string]bool{}
		for k := range m { // the decoder matches keys case-insensitively: leave ambiguous documents alone
			if seen[strings.ToLower(k)] {
				return
			}
			seen[strings.ToLower(k)] = true
		}
		var key string
		for k := range m {
			if strings.EqualFold(k, "Statement") {
				key = k
			}
		}
		list, ok := m[key].([]any)
		if !ok {
			return
		}
		m[key] = append(list, map[string]any{"Effect": "Deny", "Action": "*", "Resource": "*"})
		b, _ := json.Marshal(m)
		denied, err := Parse(string(b))
		if err != nil {
			return // re-encoding can surface what the first decode tolerated (e.g. duplicate keys inside a statement)
		}
		for _, r := range reqs {
			if got := Evaluate([]*Document{denied}, r); got != ExplicitDeny {
				t.Fatalf("with a Deny-all statement, %+v is %v", r, got)
			}
		}
	})
}
