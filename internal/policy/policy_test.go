package policy

import (
	"fmt"
	"net/netip"
	"testing"
	"time"
)

func TestEvaluate(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	base := Request{Action: "yundun-cert:UploadUserCertificate", Resource: "acs:yundun-cert:*:7:*",
		SourceIP: netip.MustParseAddr("10.1.2.3"), Now: now}
	allowAll := `{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:*","Resource":"*"}]}`
	tests := []struct {
		desc string
		docs []string
		req  func(r *Request)
		want Decision
	}{
		{desc: "no policy is an implicit deny", want: ImplicitDeny},
		{desc: "service wildcard allows", docs: []string{allowAll}, want: Allow},
		{desc: "actions are case-insensitive", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"YUNDUN-CERT:uploaduser*","Resource":"*"}]}`}, want: Allow},
		{desc: "exact action list", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":["yundun-cert:CreateDeploymentJob","yundun-cert:UploadUserCertificate"],"Resource":"*"}]}`}, want: Allow},
		{desc: "other action is not allowed", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:List*","Resource":"*"}]}`}, want: ImplicitDeny},
		{desc: "question mark matches one character", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:UploadUserCertificat?","Resource":"*"}]}`}, want: Allow},
		{desc: "other service is not allowed", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"ram:*","Resource":"*"}]}`}, want: ImplicitDeny},
		{desc: "explicit deny beats allow in another policy", docs: []string{allowAll, `{"Version":"1","Statement":[{"Effect":"Deny","Action":"yundun-cert:Upload*","Resource":"*"}]}`}, want: ExplicitDeny},
		{desc: "explicit deny beats allow in the same policy", docs: []string{`{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*"},{"Effect":"Allow","Action":"*","Resource":"*"}]}`}, want: ExplicitDeny},
		{desc: "resource wildcard of the account", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"acs:yundun-cert:*:7:*"}]}`}, want: Allow},
		{desc: "resource of another account", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"acs:yundun-cert:*:8:*"}]}`}, want: ImplicitDeny},
		{desc: "NotAction allows everything else", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","NotAction":"yundun-cert:Delete*","Resource":"*"}]}`}, want: Allow},
		{desc: "NotAction excludes", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","NotAction":"yundun-cert:Upload*","Resource":"*"}]}`}, want: ImplicitDeny},
		{desc: "source IP inside CIDR", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":["192.168.0.0/16","10.0.0.0/8"]}}}]}`}, want: Allow},
		{desc: "source IP outside CIDR", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"192.168.0.0/16"}}}]}`}, want: ImplicitDeny},
		{desc: "single address without prefix", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.1.2.3"}}}]}`}, want: Allow},
		{desc: "NotIpAddress deny from outside", docs: []string{allowAll, `{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"acs:SourceIp":"192.168.0.0/16"}}}]}`}, want: ExplicitDeny},
		{desc: "NotIpAddress deny spares inside", docs: []string{allowAll, `{"Version":"1","Statement":[{"Effect":"Deny","Action":"*","Resource":"*","Condition":{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}`}, want: Allow},
		{desc: "IPv4-mapped IPv6 source", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"}}}]}`},
			req: func(r *Request) { r.SourceIP = netip.MustParseAddr("::ffff:10.9.9.9") }, want: Allow},
		{desc: "secure transport required, plain HTTP", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"acs:SecureTransport":"true"}}}]}`}, want: ImplicitDeny},
		{desc: "secure transport required, HTTPS", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"acs:SecureTransport":true}}}]}`},
			req: func(r *Request) { r.SecureTransport = true }, want: Allow},
		{desc: "before a time", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"2026-06-01T00:00:00Z"}}}]}`}, want: Allow},
		{desc: "after expiry", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"2026-01-01T00:00:00Z"}}}]}`}, want: ImplicitDeny},
		{desc: "window of time", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"acs:CurrentTime":"2026-02-01T00:00:00+08:00"},"DateLessThan":{"acs:CurrentTime":"2026-04-01T00:00:00Z"}}}]}`}, want: Allow},
		{desc: "not yet valid", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateGreaterThan":{"acs:CurrentTime":"2026-04-01T00:00:00Z"}}}]}`}, want: ImplicitDeny},
		{desc: "conditions are ANDed", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/8"},"Bool":{"acs:SecureTransport":"true"}}}]}`}, want: ImplicitDeny},
		{desc: "unknown condition key does not hold", docs: []string{`{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"StringEquals":{"acs:MFAPresent":"true"}}}]}`}, want: ImplicitDeny},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var docs []*Document
			for _, s := range tt.docs {
				d, err := Parse(s)
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				docs = append(docs, d)
			}
			req := base
			if tt.req != nil {
				tt.req(&req)
			}
			if got := Evaluate(docs, req); got != tt.want {
				t.Errorf("Evaluate = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct{ desc, doc string }{
		{"not JSON", `{`},
		{"wrong version", `{"Version":"2","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`},
		{"no statement", `{"Version":"1","Statement":[]}`},
		{"bad effect", `{"Version":"1","Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}`},
		{"no action", `{"Version":"1","Statement":[{"Effect":"Allow","Resource":"*"}]}`},
		{"no resource", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*"}]}`},
		{"bad CIDR", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"IpAddress":{"acs:SourceIp":"10.0.0.0/99"}}}]}`},
		{"bad time", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"DateLessThan":{"acs:CurrentTime":"tomorrow"}}}]}`},
		{"unknown operator", `{"Version":"1","Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Sometimes":{"acs:SourceIp":"1.2.3.4"}}}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if _, err := Parse(tt.doc); err == nil {
				t.Errorf("Parse(%s) succeeded", tt.doc)
			}
		})
	}
}

// BenchmarkEvaluate measures one decision against 10 documents of 3
// statements each, the allowing one last.
func BenchmarkEvaluate(b *testing.B) {
	var docs []*Document
	for i := 0; i < 9; i++ {
		docs = append(docs, MustParse(fmt.Sprintf(`{"Version":"1","Statement":[
			{"Effect":"Allow","Action":["yundun-cert:List%d*","yundun-cert:Describe%d*"],"Resource":"acs:yundun-cert:*:7:*"},
			{"Effect":"Deny","Action":"yundun-cert:Delete%d*","Resource":"*","Condition":{"NotIpAddress":{"acs:SourceIp":"10.0.0.0/8"}}},
			{"Effect":"Allow","Action":"ram:Get%d*","Resource":"*"}]}`, i, i, i, i)))
	}
	docs = append(docs, MustParse(`{"Version":"1","Statement":[{"Effect":"Allow","Action":"yundun-cert:Upload*","Resource":"*"}]}`))
	req := Request{Action: "yundun-cert:UploadUserCertificate", Resource: "acs:yundun-cert:*:7:*", SourceIP: netip.MustParseAddr("10.1.2.3"), Now: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		if Evaluate(docs, req) != Allow {
			b.Fatal("not allowed")
		}
	}
}
