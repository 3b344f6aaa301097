package aliyunfake

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/auth/credentials"
	"github.com/aliyun/alibaba-cloud-sdk-go/sdk/requests"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

const (
	akID     = "LTAI5tFakeTest"
	akSecret = "fake-test-secret-0123456789"
)

func casClient(t *testing.T, f *Fake, secret string, v1 bool) *cas.Client {
	u, _ := url.Parse(f.URL())
	cfg := &openapi.Config{AccessKeyId: tea.String(akID), AccessKeySecret: tea.String(secret), Endpoint: tea.String(u.Host), Protocol: tea.String("http")}
	if v1 {
		cfg.SignatureAlgorithm = tea.String("v2") // darabonba's name for the HMAC-SHA1 RPC signature
	}
	c, err := cas.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestOfficialSDKSignatures: the official CAS SDK's requests, in both
// signature schemes, are accepted with the right secret and refused with
// SignatureDoesNotMatch with a wrong one.
func TestOfficialSDKSignatures(t *testing.T) {
	t.Parallel()
	f := New(akID, akSecret)
	defer f.Close()
	b := deploytest.Bundle(t, "www.example.com")
	for _, v1 := range []bool{false, true} {
		c := casClient(t, f, akSecret, v1)
		up, err := c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String("n" + map[bool]string{true: "1", false: "3"}[v1]),
			Cert: tea.String(b.FullChainPEM), Key: tea.String(b.KeyPEM)})
		if err != nil {
			t.Fatalf("v1=%v: UploadUserCertificate: %v", v1, err)
		}
		if id := tea.Int64Value(up.Body.CertId); f.CASSha2(id) != b.Sha2 {
			t.Errorf("v1=%v: uploaded certificate %d has SHA-256 %q, want %q", v1, id, f.CASSha2(id), b.Sha2)
		}
		list, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{OrderType: tea.String("UPLOAD")})
		if err != nil || tea.Int64Value(list.Body.TotalCount) == 0 || tea.StringValue(list.Body.CertificateOrderList[0].Sha2) != b.Sha2 {
			t.Fatalf("v1=%v: ListUserCertificateOrder: %v %+v", v1, err, list)
		}
		_, err = casClient(t, f, "wrong-secret-0123456789", v1).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
			t.Errorf("v1=%v: a wrong secret: got %v, want SignatureDoesNotMatch", v1, err)
		}
	}
}

// signedV1 returns the URL of a ListUserCertificateOrder request signed by
// alibaba-cloud-sdk-go with signature version 1.0.
func signedV1(t *testing.T, f *Fake, secret string) string {
	u, _ := url.Parse(f.URL())
	req := requests.NewCommonRequest()
	req.Method, req.Scheme, req.Domain, req.Version, req.ApiName, req.Product = "POST", "http", u.Host, "2020-04-07", "ListUserCertificateOrder", "CAS"
	req.TransToAcsRequest()
	if err := auth.Sign(req, nil, "cn-hangzhou", credentials.NewStaticAKCredentialsProvider(akID, secret)); err != nil {
		t.Fatal(err)
	}
	return req.BuildUrl()
}

func post(t *testing.T, u string) (int, string) {
	resp, err := http.Post(u, "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestReplayAndClock: a request sent twice (same nonce) and a request
// signed too long ago are refused, as Alibaba does.
func TestReplayAndClock(t *testing.T) {
	t.Parallel()
	f := New(akID, akSecret)
	defer f.Close()
	u := signedV1(t, f, akSecret)
	if st, body := post(t, u); st != 200 {
		t.Fatalf("first send: %d %s", st, body)
	}
	if st, body := post(t, u); st != 400 || !strings.Contains(body, `"SignatureNonceUsed"`) {
		t.Errorf("the same request again: %d %s, want 400 SignatureNonceUsed", st, body)
	}
	f.mu.Lock()
	f.now = func() time.Time { return time.Now().Add(20 * time.Minute) }
	f.mu.Unlock()
	if st, body := post(t, signedV1(t, f, akSecret)); st != 400 || !strings.Contains(body, `"InvalidTimeStamp.Expired"`) {
		t.Errorf("a request signed 20 minutes before the server's clock: %d %s, want 400 InvalidTimeStamp.Expired", st, body)
	}
	if n := f.Calls("ListUserCertificateOrder"); n != 1 {
		t.Errorf("%d calls counted, want only the accepted one", n)
	}
}

// TestFaults: injected faults answer with their codes and statuses, then
// stop.
func TestFaults(t *testing.T) {
	t.Parallel()
	f := New(akID, akSecret)
	defer f.Close()
	f.Fail("ListUserCertificateOrder", "Throttling.User", 1)
	f.Fail("ListUserCertificateOrder", "ServiceUnavailable", 1)
	for _, want := range []struct {
		status int
		code   string
	}{{400, "Throttling.User"}, {503, "ServiceUnavailable"}, {200, ""}} {
		st, body := post(t, signedV1(t, f, akSecret))
		if st != want.status || !strings.Contains(body, want.code) || !strings.Contains(body, `"RequestId"`) {
			t.Errorf("got %d %s, want %d %s with a RequestId", st, body, want.status, want.code)
		}
	}
	f.SetQPS("ListUserCertificateOrder", 1)
	codes := map[int]int{}
	for range 3 {
		st, _ := post(t, signedV1(t, f, akSecret))
		codes[st]++
	}
	if codes[400] == 0 {
		t.Errorf("3 calls at once under a 1-per-second limit: statuses %v, want some 400 Throttling.User", codes)
	}
}
