package audit

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		params url.Values
		want   map[string]string
	}{
		{desc: "secret parameters", params: url.Values{"SecretKey": {"s"}, "Key": {"PEM"}, "Password": {"p"}, "AccessKeySecret": {"a"}, "Name": {"n"}},
			want: map[string]string{"SecretKey": "***", "Key": "***", "Password": "***", "AccessKeySecret": "***", "Name": "n"}},
		{desc: "signing parameters dropped", params: url.Values{"Signature": {"x"}, "AccessKeyId": {"k"}, "Action": {"A"}, "CertId": {"1"}},
			want: map[string]string{"CertId": "1"}},
		{desc: "secrets inside JSON config", params: url.Values{"Config": {`{"SmtpPassword":"p","Host":"h"}`}},
			want: map[string]string{"Config": `{"Host":"h","SmtpPassword":"***"}`}},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			var got map[string]string
			if err := json.Unmarshal([]byte(Redact(tt.params)), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Errorf("%s = %q, want %q", k, got[k], v)
				}
			}
		})
	}
	long := Redact(url.Values{"Cert": {strings.Repeat("A", 5000)}})
	if len(long) > 400 || !strings.Contains(long, "5000 bytes") {
		t.Errorf("Cert not shortened: %d bytes", len(long))
	}
}

func TestSealChangesWithContent(t *testing.T) {
	t.Parallel()
	e := store.AuditEvent{Time: time.UnixMilli(1), AccountID: 1, Action: "DeleteUser", Params: "{}", Code: "Success"}
	h := Seal(&e)
	e.Code = "Forbidden.RAM"
	if Seal(&e) == h {
		t.Error("hash unchanged after editing the row")
	}
	e.Code, e.PrevHash = "Success", "x"
	if Seal(&e) == h {
		t.Error("hash unchanged after changing prev_hash")
	}
}

func TestRedactURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ desc, in, want string }{
		{desc: "DingTalk access_token", in: "https://oapi.dingtalk.com/robot/send?access_token=abc123",
			want: "https://oapi.dingtalk.com/robot/send?access_token=***"},
		{desc: "sign and key kept apart from other parameters", in: "https://h.example/hook?x=1&sign=s1&key=k1&timestamp=5",
			want: "https://h.example/hook?x=1&sign=***&key=***&timestamp=5"},
		{desc: "userinfo password", in: "https://user:pass@h.example/p", want: "https://user:***@h.example/p"},
		{desc: "inside an error message", in: `webhook: Post "https://h.example/s?token=t0k": dial tcp: refused`,
			want: `webhook: Post "https://h.example/s?token=***": dial tcp: refused`},
		{desc: "no URL", in: "plain text with access_token=x", want: "plain text with access_token=x"},
	} {
		if got := RedactURLs(tc.in); got != tc.want {
			t.Errorf("%s: RedactURLs(%q) = %q, want %q", tc.desc, tc.in, got, tc.want)
		}
	}
}

func TestRedactDescribedSecrets(t *testing.T) {
	t.Parallel()
	got := Redact(url.Values{"Config": {`{"Passphrase":"hunter2","User":"deploy"}`}, "Url": {"https://h.example/?access_token=abc"}}, "Passphrase")
	if strings.Contains(got, "hunter2") || strings.Contains(got, "abc") || !strings.Contains(got, "deploy") {
		t.Errorf("Redact = %s", got)
	}
}
