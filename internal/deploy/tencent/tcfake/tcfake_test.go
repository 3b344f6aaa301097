package tcfake

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

// tamper is a transport that lets a test change a signed request.
type tamper struct{ change func(*http.Request) }

func (tt tamper) RoundTrip(r *http.Request) (*http.Response, error) {
	if tt.change != nil {
		tt.change(r)
	}
	return http.DefaultTransport.RoundTrip(r)
}

func call(t *testing.T, f *Server, id, key, token string, change func(*http.Request), action string, params map[string]any) (map[string]any, error) {
	t.Helper()
	hp := profile.NewHttpProfile()
	hp.Scheme, hp.Endpoint = "HTTP", strings.TrimPrefix(f.URL, "http://")
	cp := profile.NewClientProfile()
	cp.HttpProfile, cp.SignMethod, cp.DisableRegionBreaker = hp, "TC3-HMAC-SHA256", true
	var cred common.CredentialIface = common.NewCredential(id, key)
	if token != "" {
		cred = common.NewTokenCredential(id, key, token)
	}
	c := common.NewCommonClient(cred, "ap-guangzhou", cp).WithHttpTransport(tamper{change})
	service := map[string]string{"DescribeDomainsConfig": "cdn", "AssumeRole": "sts", "DescribeCertificates": "ssl"}[action]
	req := tchttp.NewCommonRequest(service, versions[service], action)
	req.SetActionParameters(params)
	resp := tchttp.NewCommonResponse()
	if err := c.Send(req, resp); err != nil {
		return nil, err
	}
	var env struct{ Response map[string]any }
	json.Unmarshal(resp.GetBody(), &env)
	return env.Response, nil
}

func code(err error) string {
	if se, ok := err.(*tcerr.TencentCloudSDKError); ok {
		return se.Code
	}
	return ""
}

// TestSignatures: the fake accepts what the official SDK signs and refuses
// what Tencent refuses: another key, a changed body, a changed host, an
// old timestamp, a temporary key without its token.
func TestSignatures(t *testing.T) {
	f := New(t, "AKIDfake", "fake-secret-key")
	f.AddCDNDomain("www.example.com")
	if out, err := call(t, f, "AKIDfake", "fake-secret-key", "", nil, "DescribeDomainsConfig", map[string]any{}); err != nil || out["TotalNumber"] != float64(1) {
		t.Fatalf("a well-signed call: %v, %v", out, err)
	}
	for _, tc := range []struct {
		desc, id, key, want string
		change              func(*http.Request)
	}{
		{"another key", "AKIDfake", "other-secret", "AuthFailure.SignatureFailure", nil},
		{"an unknown SecretId", "AKIDnobody", "fake-secret-key", "AuthFailure.SecretIdNotFound", nil},
		{"a changed body", "AKIDfake", "fake-secret-key", "AuthFailure.SignatureFailure", func(r *http.Request) {
			b, _ := io.ReadAll(r.Body)
			b = bytes.Replace(b, []byte("{"), []byte(`{"Offset":1,`), 1)
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(b)), int64(len(b))
		}},
		{"a changed host", "AKIDfake", "fake-secret-key", "AuthFailure.SignatureFailure", func(r *http.Request) { r.Host = "cdn.tencentcloudapi.com" }},
		{"a changed action scope", "AKIDfake", "fake-secret-key", "AuthFailure.SignatureFailure", func(r *http.Request) {
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/cdn/", "/ssl/", 1))
		}},
	} {
		_, err := call(t, f, tc.id, tc.key, "", tc.change, "DescribeDomainsConfig", map[string]any{})
		if code(err) != tc.want {
			t.Errorf("%s: got %v, want %s", tc.desc, err, tc.want)
		}
	}
	f.Advance(6 * time.Minute)
	if _, err := call(t, f, "AKIDfake", "fake-secret-key", "", nil, "DescribeDomainsConfig", map[string]any{}); code(err) != "AuthFailure.SignatureExpire" {
		t.Errorf("a timestamp six minutes old: got %v, want AuthFailure.SignatureExpire", err)
	}
	f.Advance(-6 * time.Minute)

	out, err := call(t, f, "AKIDfake", "fake-secret-key", "", nil, "AssumeRole", map[string]any{"RoleArn": "qcs::cam::uin/1:roleName/r", "RoleSessionName": "s"})
	if err != nil {
		t.Fatal(err)
	}
	creds := out["Credentials"].(map[string]any)
	id, key, tok := creds["TmpSecretId"].(string), creds["TmpSecretKey"].(string), creds["Token"].(string)
	if _, err := call(t, f, id, key, tok, nil, "DescribeDomainsConfig", map[string]any{}); err != nil {
		t.Errorf("the temporary key with its token: %v", err)
	}
	if _, err := call(t, f, id, key, "", nil, "DescribeDomainsConfig", map[string]any{}); code(err) != "AuthFailure.TokenFailure" {
		t.Errorf("the temporary key without its token: got %v, want AuthFailure.TokenFailure", err)
	}
}

// TestFaults: an injected code answers the next calls, then the fake
// serves again; the error shape is Response.Error with a RequestId.
func TestFaults(t *testing.T) {
	f := New(t, "AKIDfake", "fake-secret-key")
	f.Inject(Fault{Action: "DescribeCertificates", Code: "RequestLimitExceeded", Times: 2})
	for i := range 3 {
		_, err := call(t, f, "AKIDfake", "fake-secret-key", "", nil, "DescribeCertificates", map[string]any{})
		se, _ := err.(*tcerr.TencentCloudSDKError)
		switch {
		case i < 2 && (se == nil || se.Code != "RequestLimitExceeded" || se.RequestId == ""):
			t.Errorf("call %d: got %v, want RequestLimitExceeded with a RequestId", i, err)
		case i == 2 && err != nil:
			t.Errorf("call %d after the fault: %v", i, err)
		}
	}
}
