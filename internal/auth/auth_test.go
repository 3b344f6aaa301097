package auth

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
)

const (
	testKeyID  = "LTAI5tTestKeyId0001"
	testSecret = "s3cr3t-AccessKeySecret/with+odd=chars"
)

// trickyQuery exercises percent-encoding: spaces, '*', '~', '+', '=', '&', '%', unicode, empty values.
func trickyQuery() map[string]*string {
	return map[string]*string{
		"Keyword":    dara.String("a b*c~d+e=f&g"),
		"Name":       dara.String("证书 ünï/é?#"),
		"Empty":      dara.String(""),
		"Percent":    dara.String("100%7E%20"),
		"Status":     dara.String("ISSUED"),
		"CertIds":    dara.String("[1,2]"),
		"Tag.1.Key":  dara.String("env"),
		"ShowSize":   dara.String("50"),
		"OrderType":  dara.String("UPLOAD"),
		"Star*Tilde": dara.String("*~"),
	}
}

// trickyBody is sent as an application/x-www-form-urlencoded body.
func trickyBody() map[string]any {
	return map[string]any{
		"Cert":  "-----BEGIN CERTIFICATE-----\nMIIB+/==\n-----END CERTIFICATE-----",
		"Label": "f o*r~m+=&é",
		"Blank": "",
	}
}

// captured is a request as the server received it from the official SDK.
type captured struct {
	req  *http.Request // Body already read into body
	body []byte
}

// request returns a fresh copy that a test may change.
func (c captured) request() *http.Request { return c.req.Clone(context.Background()) }

// params is what the API layer passes to Parse: the query plus the fields of a form body.
func (c captured) params(t testing.TB) url.Values {
	t.Helper()
	return paramsOf(t, c.req, c.body)
}

func paramsOf(t testing.TB, r *http.Request, body []byte) url.Values {
	t.Helper()
	params, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		t.Fatalf("parse query: %v", err)
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			t.Fatalf("parse form body: %v", err)
		}
		for k, vs := range form {
			params[k] = append(params[k], vs...)
		}
	}
	return params
}

// sdkCall sends one ListUserCertificateOrder call with the official SDK to a loopback server and
// returns what the server received. algorithm "" is the SDK default (V3); "v2" selects V1.
func sdkCall(t testing.TB, algorithm, method string, query map[string]*string, body map[string]any) captured {
	t.Helper()
	var (
		mu  sync.Mutex
		got captured
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = captured{req: r.Clone(context.Background()), body: b}
		got.req.Body = nil
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"RequestId":"X"}`)
	}))
	t.Cleanup(srv.Close)

	cfg := &openapi.Config{
		AccessKeyId:     dara.String(testKeyID),
		AccessKeySecret: dara.String(testSecret),
		Endpoint:        dara.String(strings.TrimPrefix(srv.URL, "http://")),
		Protocol:        dara.String("http"),
	}
	if algorithm != "" {
		cfg.SignatureAlgorithm = dara.String(algorithm)
	}
	client, err := openapi.NewClient(cfg)
	if err != nil {
		t.Fatalf("new SDK client: %v", err)
	}
	params := &openapiutil.Params{
		Action:      dara.String("ListUserCertificateOrder"),
		Version:     dara.String("2020-04-07"),
		Protocol:    dara.String("HTTP"),
		Pathname:    dara.String("/"),
		Method:      dara.String(method),
		AuthType:    dara.String("AK"),
		Style:       dara.String("RPC"),
		ReqBodyType: dara.String("formData"),
		BodyType:    dara.String("json"),
	}
	req := &openapiutil.OpenApiRequest{Query: query}
	if body != nil {
		req.Body = body
	}
	resp, err := client.CallApi(params, req, &dara.RuntimeOptions{})
	if err != nil {
		t.Fatalf("SDK call: %v", err)
	}
	if b, _ := resp["body"].(map[string]any); b["RequestId"] != "X" {
		t.Fatalf("SDK response = %v, want body RequestId X", resp)
	}
	mu.Lock()
	defer mu.Unlock()
	if got.req == nil {
		t.Fatal("the server captured no request")
	}
	return got
}

// bundle holds SDK-signed requests of every shape the tests need.
type bundle struct {
	v3Query captured // POST, parameters in the query, empty body
	v3Form  captured // POST, parameters in the query and a form body
	v3Get   captured // GET, parameters in the query
	v1Query captured // POST, SignatureAlgorithm v2, parameters in the query
	v1Form  captured // POST, SignatureAlgorithm v2, parameters in the query and a form body
}

func setup(t testing.TB) *bundle {
	t.Helper()
	return &bundle{
		v3Query: sdkCall(t, "", "POST", trickyQuery(), nil),
		v3Form:  sdkCall(t, "", "POST", trickyQuery(), trickyBody()),
		v3Get:   sdkCall(t, "", "GET", trickyQuery(), nil),
		v1Query: sdkCall(t, "v2", "POST", trickyQuery(), nil),
		v1Form:  sdkCall(t, "v2", "POST", trickyQuery(), trickyBody()),
	}
}

// check runs Parse then, if it succeeds, Verify at the request's own timestamp + skew.
type check struct {
	desc     string
	base     captured
	mutate   func(t *testing.T, r *http.Request, params url.Values, body *[]byte)
	secret   string        // defaults to testSecret
	skew     time.Duration // now = claimed timestamp + skew
	wantCode string        // "" for success
	wantMsg  string        // substring of the message
	fixClaim func(s *Signed)
}

func runChecks(t *testing.T, scheme string, checks []check) {
	t.Helper()
	for _, tc := range checks {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			r := tc.base.request()
			params := tc.base.params(t)
			body := bytes.Clone(tc.base.body)
			if tc.mutate != nil {
				tc.mutate(t, r, params, &body)
			}
			secret := tc.secret
			if secret == "" {
				secret = testSecret
			}
			s, err := Parse(r, params)
			if err == nil {
				if s.Scheme != scheme || s.AccessKeyID != testKeyID || s.Nonce == "" || s.Timestamp.IsZero() {
					t.Fatalf("Parse = %+v, want scheme %s, key %s, a nonce and a timestamp", s, scheme, testKeyID)
				}
				if d := time.Since(s.Timestamp); d > time.Minute || d < -time.Minute {
					t.Fatalf("Parse timestamp %v is not about now", s.Timestamp)
				}
				if tc.fixClaim != nil {
					tc.fixClaim(&s)
				}
				err = Verify(r, params, body, s, secret, s.Timestamp.Add(tc.skew))
			}
			assertErr(t, err, tc.wantCode, tc.wantMsg)
			if err != nil {
				t.Log(err)
				assertNoLeak(t, err, r, params, secret)
			}
		})
	}
}

func assertErr(t *testing.T, err error, wantCode, wantMsg string) {
	t.Helper()
	if wantCode == "" {
		if err != nil {
			t.Fatalf("got error %v, want success", err)
		}
		return
	}
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("got error %v (%T), want *Error with code %s", err, err, wantCode)
	}
	if ae.Code != wantCode || ae.Status != http.StatusBadRequest {
		t.Fatalf("got %s (HTTP %d): %s; want %s (HTTP 400)", ae.Code, ae.Status, ae.Message, wantCode)
	}
	if !strings.Contains(ae.Message, wantMsg) {
		t.Fatalf("message %q does not contain %q", ae.Message, wantMsg)
	}
}

// assertNoLeak checks an error message holds neither the secret nor the signature the server expects.
func assertNoLeak(t *testing.T, err error, r *http.Request, params url.Values, secret string) {
	t.Helper()
	msg := err.Error()
	if strings.Contains(msg, secret) || strings.Contains(msg, testSecret) {
		t.Fatalf("message leaks the secret: %s", msg)
	}
	v3, _, perr := parse(r, params)
	if perr != nil {
		return
	}
	var expected []string
	if v3 != nil {
		sts, serr := v3.stringToSign(r)
		if serr != nil {
			return
		}
		for _, k := range []string{secret, testSecret} {
			m := hmac.New(sha256.New, []byte(k))
			m.Write([]byte(sts))
			expected = append(expected, hex.EncodeToString(m.Sum(nil)))
		}
	} else {
		sts := stringToSignV1(r.Method, params)
		for _, k := range []string{secret, testSecret} {
			m := hmac.New(sha1.New, []byte(k+"&"))
			m.Write([]byte(sts))
			sum := m.Sum(nil)
			expected = append(expected, base64.StdEncoding.EncodeToString(sum), hex.EncodeToString(sum))
		}
	}
	for _, e := range expected {
		if strings.Contains(strings.ToLower(msg), strings.ToLower(e)) {
			t.Fatalf("message leaks the expected signature %s: %s", e, msg)
		}
	}
}

// setAuthz replaces the Authorization header using f on the current one.
func setAuthz(f func(string) string) func(*testing.T, *http.Request, url.Values, *[]byte) {
	return func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
		r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
	}
}

// editSigned rewrites the SignedHeaders list of an Authorization header with f.
func editSigned(f func([]string) []string) func(string) string {
	return func(a string) string {
		i := strings.Index(a, "SignedHeaders=") + len("SignedHeaders=")
		j := i + strings.Index(a[i:], ",")
		return a[:i] + strings.Join(f(strings.Split(a[i:j], ";")), ";") + a[j:]
	}
}

// dropSigned removes name from SignedHeaders.
func dropSigned(name string) func(string) string {
	return editSigned(func(names []string) []string {
		var out []string
		for _, n := range names {
			if n != name {
				out = append(out, n)
			}
		}
		return out
	})
}

// mapSigned replaces name in SignedHeaders with the names repl returns.
func mapSigned(name string, repl ...string) func(string) string {
	return editSigned(func(names []string) []string {
		var out []string
		for _, n := range names {
			if n == name {
				out = append(out, repl...)
			} else {
				out = append(out, n)
			}
		}
		return out
	})
}

// setQuery sets a query parameter in the URL and in params, as a tampering proxy would.
func setQuery(key, value string) func(*testing.T, *http.Request, url.Values, *[]byte) {
	return func(_ *testing.T, r *http.Request, params url.Values, _ *[]byte) {
		q := r.URL.Query()
		q.Set(key, value)
		r.URL.RawQuery = q.Encode()
		params.Set(key, value)
	}
}

func TestVerifyV3(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if got := b.v3Form.req.Header.Get("Content-Type"); got != "application/x-www-form-urlencoded" {
		t.Fatalf("the SDK sent Content-Type %q with a form body", got)
	}
	if len(b.v3Form.body) == 0 || len(b.v3Query.body) != 0 {
		t.Fatalf("body lengths: form %d, query %d; want a form body and an empty one", len(b.v3Form.body), len(b.v3Query.body))
	}
	if b.v3Query.req.URL.Query().Has("Action") {
		t.Fatal("the SDK sent Action in the V3 query; these tests assume it sends only x-acs-action")
	}

	var checks []check
	for _, base := range []struct {
		name string
		c    captured
	}{{"query", b.v3Query}, {"form", b.v3Form}, {"GET", b.v3Get}} {
		n := base.name + ": "
		c := base.c
		checks = append(checks,
			check{desc: n + "right secret passes", base: c},
			check{desc: n + "query re-encoded in another order passes", base: c, mutate: func(t *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				q, err := url.ParseQuery(r.URL.RawQuery)
				if err != nil {
					t.Fatal(err)
				}
				var parts []string
				for k, vs := range q {
					for _, v := range vs {
						parts = append([]string{url.QueryEscape(k) + "=" + strings.ReplaceAll(url.QueryEscape(v), "+", "%20")}, parts...)
					}
				}
				r.URL.RawQuery = strings.Join(parts, "&")
			}},
			check{desc: n + "unsigned ordinary headers may change", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("User-Agent", "proxy/1.0")
				r.Header.Set("X-Forwarded-For", "10.0.0.1")
			}},
			check{desc: n + "spaces after commas in Authorization pass", base: c, mutate: setAuthz(func(a string) string {
				return strings.ReplaceAll(a, ",", ", ")
			})},
			check{desc: n + "skew +14m passes", base: c, skew: 14 * time.Minute},
			check{desc: n + "skew -14m passes", base: c, skew: -14 * time.Minute},
			check{desc: n + "skew +15m passes", base: c, skew: 15 * time.Minute},
			check{desc: n + "skew -15m passes", base: c, skew: -15 * time.Minute},
			check{desc: n + "skew +16m expired", base: c, skew: 16 * time.Minute, wantCode: CodeTimeStampExpired, wantMsg: "15 minutes"},
			check{desc: n + "skew -16m expired", base: c, skew: -16 * time.Minute, wantCode: CodeTimeStampExpired, wantMsg: "15 minutes"},
			check{desc: n + "wrong secret", base: c, secret: "wrong-secret", wantCode: CodeSignatureDoesNotMatch, wantMsg: "StringToSign"},
			check{desc: n + "wrong secret and expired reports the signature", base: c, secret: "wrong", skew: time.Hour, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "tampered query value", base: c, mutate: setQuery("Status", "EXPIRED"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "tampered unicode query value", base: c, mutate: setQuery("Name", "证书 ünï/é?"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "added query parameter", base: c, mutate: setQuery("CurrentPage", "2"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "removed query parameter", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				q := r.URL.Query()
				q.Del("Empty")
				r.URL.RawQuery = q.Encode()
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "tampered signed header x-acs-action", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("x-acs-action", "DeleteUserCertificate")
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "other host", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Host = "evil.example:443"
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "other method", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				if r.Method == "GET" {
					r.Method = "POST"
				} else {
					r.Method = "GET"
				}
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "other path", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.URL.Path = "/admin"
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "body added", base: c, mutate: func(_ *testing.T, _ *http.Request, _ url.Values, body *[]byte) {
				*body = append(*body, "&Extra=1"...)
			}, wantCode: CodeSignatureDoesNotMatch, wantMsg: "SHA-256 of the body"},
			check{desc: n + "body and x-acs-content-sha256 both replaced", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, body *[]byte) {
				*body = []byte("Label=evil")
				sum := sha256.Sum256(*body)
				r.Header.Set("x-acs-content-sha256", hex.EncodeToString(sum[:]))
			}, wantCode: CodeSignatureDoesNotMatch, wantMsg: "StringToSign"},
			check{desc: n + "claim does not match the request", base: c, fixClaim: func(s *Signed) { s.AccessKeyID = "other" },
				wantCode: CodeIncompleteSignature, wantMsg: "does not match the request"},
			check{desc: n + "claimed nonce differs", base: c, fixClaim: func(s *Signed) { s.Nonce += "x" },
				wantCode: CodeIncompleteSignature, wantMsg: "does not match the request"},
			check{desc: n + "unsigned x-acs header", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("x-acs-security-token", "t")
			}, wantCode: CodeIncompleteSignature, wantMsg: "x-acs-security-token is present but not in SignedHeaders"},
			check{desc: n + "unsigned content-type", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("Content-Type", "text/plain")
				r.Header.Set("Authorization", dropSigned("content-type")(r.Header.Get("Authorization")))
			}, wantCode: CodeIncompleteSignature, wantMsg: "content-type is present but not in SignedHeaders"},
			check{desc: n + "x-acs-date not signed", base: c, mutate: setAuthz(dropSigned("x-acs-date")),
				wantCode: CodeIncompleteSignature, wantMsg: "x-acs-date is present but not in SignedHeaders"},
			check{desc: n + "host not signed", base: c, mutate: setAuthz(dropSigned("host")),
				wantCode: CodeIncompleteSignature, wantMsg: "must include host"},
			check{desc: n + "missing Credential", base: c, mutate: setAuthz(func(a string) string {
				return strings.Replace(a, "Credential="+testKeyID+",", "", 1)
			}), wantCode: CodeIncompleteSignature, wantMsg: "no Credential"},
			check{desc: n + "empty Credential", base: c, mutate: setAuthz(func(a string) string {
				return strings.Replace(a, "Credential="+testKeyID, "Credential=", 1)
			}), wantCode: CodeIncompleteSignature, wantMsg: "no Credential"},
			check{desc: n + "missing Signature", base: c, mutate: setAuthz(func(a string) string {
				return a[:strings.Index(a, ",Signature=")]
			}), wantCode: CodeIncompleteSignature, wantMsg: "no Signature"},
			check{desc: n + "missing SignedHeaders", base: c, mutate: setAuthz(func(a string) string {
				i, j := strings.Index(a, ",SignedHeaders="), strings.Index(a, ",Signature=")
				return a[:i] + a[j:]
			}), wantCode: CodeIncompleteSignature, wantMsg: "no SignedHeaders"},
			check{desc: n + "algorithm only", base: c, mutate: setAuthz(func(string) string { return SchemeV3 }),
				wantCode: CodeIncompleteSignature, wantMsg: "no Credential"},
			check{desc: n + "duplicate Credential", base: c, mutate: setAuthz(func(a string) string {
				return a + ",Credential=other"
			}), wantCode: CodeIncompleteSignature, wantMsg: "Credential more than once"},
			check{desc: n + "unknown field", base: c, mutate: setAuthz(func(a string) string { return a + ",Region=cn" }),
				wantCode: CodeIncompleteSignature, wantMsg: `unknown field "Region"`},
			check{desc: n + "field without =", base: c, mutate: setAuthz(func(a string) string { return a + ",junk" }),
				wantCode: CodeIncompleteSignature, wantMsg: "without '='"},
			check{desc: n + "signature not hex", base: c, mutate: setAuthz(func(a string) string {
				return a[:strings.Index(a, ",Signature=")] + ",Signature=zz"
			}), wantCode: CodeIncompleteSignature, wantMsg: "64 hex digits"},
			check{desc: n + "signature truncated", base: c, mutate: setAuthz(func(a string) string { return a[:len(a)-2] }),
				wantCode: CodeIncompleteSignature, wantMsg: "64 hex digits"},
			check{desc: n + "signature upper-case hex passes", base: c, mutate: setAuthz(func(a string) string {
				i := strings.Index(a, ",Signature=") + len(",Signature=")
				return a[:i] + strings.ToUpper(a[i:])
			})},
			check{desc: n + "one signature bit flipped", base: c, mutate: setAuthz(func(a string) string {
				last := a[len(a)-1]
				flip := byte('0')
				if last == '0' {
					flip = '1'
				}
				return a[:len(a)-1] + string(flip)
			}), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "upper-case SignedHeaders", base: c, mutate: setAuthz(mapSigned("host", "Host")),
				wantCode: CodeIncompleteSignature, wantMsg: "lower-case"},
			check{desc: n + "empty name in SignedHeaders", base: c, mutate: setAuthz(mapSigned("host", "", "host")),
				wantCode: CodeIncompleteSignature, wantMsg: "lower-case"},
			check{desc: n + "duplicate name in SignedHeaders", base: c, mutate: setAuthz(mapSigned("host", "host", "host")),
				wantCode: CodeIncompleteSignature, wantMsg: "more than once"},
			check{desc: n + "absent header signed as empty is a different request", base: c, mutate: setAuthz(mapSigned("host", "host", "x-absent")),
				wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "unsupported ACS3 algorithm", base: c, mutate: setAuthz(func(a string) string {
				return strings.Replace(a, SchemeV3, "ACS3-HMAC-SM3", 1)
			}), wantCode: CodeIncompleteSignature, wantMsg: "unsupported signature algorithm"},
			check{desc: n + "two Authorization headers", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Add("Authorization", r.Header.Get("Authorization"))
			}, wantCode: CodeIncompleteSignature, wantMsg: "2 Authorization headers"},
			check{desc: n + "x-acs-date missing", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Del("x-acs-date")
			}, wantCode: CodeIncompleteSignature, wantMsg: "x-acs-date header is missing"},
			check{desc: n + "x-acs-date malformed", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("x-acs-date", time.Now().UTC().Format(time.RFC1123))
			}, wantCode: CodeIncompleteSignature, wantMsg: "yyyy-MM-ddTHH:mm:ssZ"},
			check{desc: n + "nonce missing", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Del("x-acs-signature-nonce")
			}, wantCode: CodeIncompleteSignature, wantMsg: "x-acs-signature-nonce header is missing"},
			check{desc: n + "content hash missing", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Del("x-acs-content-sha256")
			}, wantCode: CodeIncompleteSignature, wantMsg: "x-acs-content-sha256 header is missing"},
			check{desc: n + "content hash not hex", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("x-acs-content-sha256", "UNSIGNED-PAYLOAD")
			}, wantCode: CodeIncompleteSignature, wantMsg: "64 hex digits"},
			check{desc: n + "other Authorization scheme", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("Authorization", "Bearer abc")
			}, wantCode: CodeIncompleteSignature, wantMsg: "no Signature parameter"},
			check{desc: n + "no Authorization header", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Del("Authorization")
			}, wantCode: CodeIncompleteSignature, wantMsg: "the request is not signed"},
		)
	}
	runChecks(t, SchemeV3, checks)
}

// setParam changes a parameter as the API layer would see it (V1 signs parameters, not the URL as such).
func setParam(key, value string) func(*testing.T, *http.Request, url.Values, *[]byte) {
	return func(_ *testing.T, _ *http.Request, params url.Values, _ *[]byte) { params.Set(key, value) }
}

func delParam(key string) func(*testing.T, *http.Request, url.Values, *[]byte) {
	return func(_ *testing.T, _ *http.Request, params url.Values, _ *[]byte) { params.Del(key) }
}

func TestVerifyV1(t *testing.T) {
	t.Parallel()
	b := setup(t)
	if b.v1Query.req.Header.Get("Authorization") != "" {
		t.Fatal("the SDK sent an Authorization header with SignatureAlgorithm v2")
	}
	if got := b.v1Form.params(t).Get("Label"); got != "f o*r~m+=&é" {
		t.Fatalf("form field Label = %q", got)
	}

	var checks []check
	for _, base := range []struct {
		name string
		c    captured
	}{{"query", b.v1Query}, {"form", b.v1Form}} {
		n := base.name + ": "
		c := base.c
		checks = append(checks,
			check{desc: n + "right secret passes", base: c},
			check{desc: n + "headers are not signed in V1", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("x-acs-action", "DeleteUserCertificate")
				r.Host = "other.example"
			}},
			check{desc: n + "skew +14m passes", base: c, skew: 14 * time.Minute},
			check{desc: n + "skew -14m passes", base: c, skew: -14 * time.Minute},
			check{desc: n + "skew +16m expired", base: c, skew: 16 * time.Minute, wantCode: CodeTimeStampExpired},
			check{desc: n + "skew -16m expired", base: c, skew: -16 * time.Minute, wantCode: CodeTimeStampExpired},
			check{desc: n + "wrong secret", base: c, secret: "wrong-secret", wantCode: CodeSignatureDoesNotMatch, wantMsg: "HMAC-SHA1"},
			check{desc: n + "tampered param", base: c, mutate: setParam("Status", "EXPIRED"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "tampered unicode param", base: c, mutate: setParam("Name", "证书"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "tampered Action", base: c, mutate: setParam("Action", "DeleteUserCertificate"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "added param", base: c, mutate: setParam("CurrentPage", "2"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "removed empty param", base: c, mutate: delParam("Empty"), wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "repeated param", base: c, mutate: func(_ *testing.T, _ *http.Request, p url.Values, _ *[]byte) {
				p.Add("Status", "ISSUED")
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "other method", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Method = "GET"
			}, wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "signature of another request", base: c, mutate: setParam("Signature", base64.StdEncoding.EncodeToString(make([]byte, 20))),
				wantCode: CodeSignatureDoesNotMatch},
			check{desc: n + "claim does not match the request", base: c, fixClaim: func(s *Signed) { s.Timestamp = s.Timestamp.Add(time.Second) },
				wantCode: CodeIncompleteSignature, wantMsg: "does not match the request"},
			check{desc: n + "missing AccessKeyId", base: c, mutate: delParam("AccessKeyId"), wantCode: CodeIncompleteSignature, wantMsg: "AccessKeyId is mandatory"},
			check{desc: n + "missing SignatureNonce", base: c, mutate: delParam("SignatureNonce"), wantCode: CodeIncompleteSignature, wantMsg: "SignatureNonce is mandatory"},
			check{desc: n + "missing Timestamp", base: c, mutate: delParam("Timestamp"), wantCode: CodeIncompleteSignature, wantMsg: "Timestamp is mandatory"},
			check{desc: n + "missing SignatureMethod", base: c, mutate: delParam("SignatureMethod"), wantCode: CodeIncompleteSignature, wantMsg: "SignatureMethod is mandatory"},
			check{desc: n + "missing SignatureVersion", base: c, mutate: delParam("SignatureVersion"), wantCode: CodeIncompleteSignature, wantMsg: "SignatureVersion is mandatory"},
			check{desc: n + "empty Signature", base: c, mutate: setParam("Signature", ""), wantCode: CodeIncompleteSignature, wantMsg: "Signature is mandatory"},
			check{desc: n + "Signature not base64", base: c, mutate: setParam("Signature", "!!!"), wantCode: CodeIncompleteSignature, wantMsg: "base64"},
			check{desc: n + "Signature too short", base: c, mutate: setParam("Signature", "AAAA"), wantCode: CodeIncompleteSignature, wantMsg: "base64"},
			check{desc: n + "SignatureMethod HMAC-SHA256", base: c, mutate: setParam("SignatureMethod", "HMAC-SHA256"),
				wantCode: CodeIncompleteSignature, wantMsg: `SignatureMethod "HMAC-SHA256" is not supported`},
			check{desc: n + "SignatureVersion 2.0", base: c, mutate: setParam("SignatureVersion", "2.0"),
				wantCode: CodeIncompleteSignature, wantMsg: `SignatureVersion "2.0" is not supported`},
			check{desc: n + "Timestamp malformed", base: c, mutate: setParam("Timestamp", "2024-01-02 03:04:05"),
				wantCode: CodeIncompleteSignature, wantMsg: "yyyy-MM-ddTHH:mm:ssZ"},
			check{desc: n + "SignatureNonce twice", base: c, mutate: func(_ *testing.T, _ *http.Request, p url.Values, _ *[]byte) {
				p.Add("SignatureNonce", "again")
			}, wantCode: CodeIncompleteSignature, wantMsg: "SignatureNonce is given more than once"},
			check{desc: n + "Signature param removed: unsigned", base: c, mutate: delParam("Signature"),
				wantCode: CodeIncompleteSignature, wantMsg: "the request is not signed"},
			check{desc: n + "unrelated Authorization header is ignored", base: c, mutate: func(_ *testing.T, r *http.Request, _ url.Values, _ *[]byte) {
				r.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
			}},
		)
	}
	runChecks(t, SchemeV1, checks)
}

func TestParseUnsigned(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc    string
		req     *http.Request
		params  url.Values
		wantMsg string
	}{
		{desc: "nil request", wantMsg: "not signed"},
		{desc: "no signature at all", req: httptest.NewRequest("POST", "/?Action=ListContact", nil),
			params: url.Values{"Action": {"ListContact"}}, wantMsg: "the request is not signed"},
		{desc: "nil params", req: httptest.NewRequest("GET", "/", nil), wantMsg: "the request is not signed"},
		{desc: "ACS3 prefix only", req: withHeader(httptest.NewRequest("GET", "/", nil), "Authorization", "ACS3-"),
			wantMsg: "unsupported signature algorithm"},
		{desc: "lower-case scheme is not V3", req: withHeader(httptest.NewRequest("GET", "/", nil), "Authorization", "acs3-hmac-sha256 Credential=a"),
			wantMsg: "is not ACS3-HMAC-SHA256"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.req, tc.params)
			assertErr(t, err, CodeIncompleteSignature, tc.wantMsg)
			err = Verify(tc.req, tc.params, nil, Signed{}, testSecret, time.Now())
			assertErr(t, err, CodeIncompleteSignature, tc.wantMsg)
		})
	}
}

func withHeader(r *http.Request, k, v string) *http.Request {
	r.Header.Set(k, v)
	return r
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	err := error(&Error{Code: CodeIncompleteSignature, Status: 400, Message: "the request is not signed"})
	if got, want := err.Error(), "auth: IncompleteSignature: the request is not signed"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

// TestPct compares pct with what the SDKs do: url.QueryEscape, then + → %20, * → %2A, %7E → ~.
func TestPct(t *testing.T) {
	t.Parallel()
	var all []byte
	for c := range 256 {
		all = append(all, byte(c))
	}
	for _, tc := range []struct {
		desc string
		in   string
	}{
		{desc: "empty", in: ""},
		{desc: "unreserved", in: "AZaz09-_.~"},
		{desc: "space star plus", in: "a b*c+d"},
		{desc: "reserved", in: "!#$&'()*+,/:;=?@[]"},
		{desc: "percent sequences", in: "%7E%2A%20%"},
		{desc: "unicode", in: "证书 ünï"},
		{desc: "every byte", in: string(all)},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			want := url.QueryEscape(tc.in)
			want = strings.ReplaceAll(want, "+", "%20")
			want = strings.ReplaceAll(want, "*", "%2A")
			want = strings.ReplaceAll(want, "%7E", "~")
			if got := pct(tc.in); got != want {
				t.Fatalf("pct(%q) = %q, want %q", tc.in, got, want)
			}
		})
	}
}

// TestV1MatchesSDKSignature checks the V1 signature against the SDK's own GetRPCSignature.
func TestV1MatchesSDKSignature(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc   string
		method string
		params map[string]string
	}{
		{desc: "minimal", method: "GET", params: map[string]string{"Action": "ListContact"}},
		{desc: "tricky values", method: "POST", params: map[string]string{
			"Keyword": "a b*c~d+e=f&g", "Name": "证书 ünï", "Empty": "", "Percent": "100%7E", "Tag.1.Key": "x/y",
		}},
		{desc: "keys that sort differently raw and escaped", method: "POST", params: map[string]string{
			"A": "1", "A.B": "2", "A_B": "3", "AB": "4", "a": "5", "A-B": "6", "A~B": "7",
		}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			sdk := map[string]*string{}
			params := url.Values{}
			for k, v := range tc.params {
				sdk[k] = dara.String(v)
				params.Set(k, v)
			}
			want := dara.StringValue(openapiutil.GetRPCSignature(sdk, dara.String(tc.method), dara.String(testSecret)))
			m := hmac.New(sha1.New, []byte(testSecret+"&"))
			m.Write([]byte(stringToSignV1(tc.method, params)))
			if got := base64.StdEncoding.EncodeToString(m.Sum(nil)); got != want {
				t.Fatalf("signature %s, SDK %s; StringToSign %q", got, want, stringToSignV1(tc.method, params))
			}
		})
	}
}

// TestV3MatchesSDKAuthorization signs synthetic requests with the SDK's GetAuthorization and verifies
// them, covering shapes the SDK client does not produce (other paths, several header values).
func TestV3MatchesSDKAuthorization(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, tc := range []struct {
		desc     string
		method   string
		path     string
		query    map[string]string
		headers  map[string]string
		body     string
		wantCode string
	}{
		{desc: "no query", method: "POST", path: "/"},
		{desc: "tricky query", method: "GET", path: "/", query: map[string]string{
			"Keyword": "a b*c~d+e=f&g", "Name": "证书 ünï", "Empty": "", "Percent": "100%7E", "Tag.1.Key": "x/y",
		}},
		{desc: "path with a star", method: "POST", path: "/a*b"},
		{desc: "extra x-acs header and content-type", method: "POST", path: "/", body: "a=1",
			headers: map[string]string{"x-acs-region-id": "cn-hangzhou", "content-type": "application/x-www-form-urlencoded"}},
		{desc: "header values with spaces are trimmed", method: "POST", path: "/",
			headers: map[string]string{"x-acs-note": "  padded  "}},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			sum := sha256.Sum256([]byte(tc.body))
			payload := hex.EncodeToString(sum[:])
			headers := map[string]*string{
				"host":                  dara.String("cas.example:8443"),
				"x-acs-action":          dara.String("ListUserCertificateOrder"),
				"x-acs-version":         dara.String("2020-04-07"),
				"x-acs-date":            dara.String(now.Format(TimeLayout)),
				"x-acs-signature-nonce": dara.String("nonce-1"),
				"x-acs-content-sha256":  dara.String(payload),
				"user-agent":            dara.String("test"),
			}
			for k, v := range tc.headers {
				headers[k] = dara.String(v)
			}
			query := map[string]*string{}
			q := url.Values{}
			for k, v := range tc.query {
				query[k] = dara.String(v)
				q.Set(k, v)
			}
			sdkReq := &dara.Request{Method: dara.String(tc.method), Pathname: dara.String(tc.path), Query: query, Headers: headers}
			authz := openapiutil.GetAuthorization(sdkReq, dara.String(SchemeV3), dara.String(payload), dara.String(testKeyID), dara.String(testSecret))

			// Built the way dara.DoRequest builds it: the path as is, the query url.Values-encoded.
			r, err := http.NewRequest(tc.method, "http://cas.example:8443"+tc.path+"?"+q.Encode(), strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			r.Host = "cas.example:8443"
			for k, v := range headers {
				if k != "host" {
					r.Header.Set(k, *v)
				}
			}
			r.Header.Set("Authorization", *authz)
			params := paramsOf(t, r, []byte(tc.body))
			s, err := Parse(r, params)
			if err == nil {
				err = Verify(r, params, []byte(tc.body), s, testSecret, now)
			}
			assertErr(t, err, tc.wantCode, "")
		})
	}
}

func FuzzParse(f *testing.F) {
	b := setup(f)
	f.Add(b.v3Form.req.Header.Get("Authorization"), b.v3Form.req.URL.RawQuery)
	f.Add(b.v3Query.req.Header.Get("Authorization"), "")
	f.Add("", b.v1Query.req.URL.RawQuery)
	f.Add("ACS3-HMAC-SHA256 Credential=,SignedHeaders=;;,Signature=", "a=%zz")
	f.Add("ACS3-HMAC-SHA256 ,,,=,==", "Signature=&Signature=")
	f.Add("ACS3-HMAC-SM3", "")
	base := b.v3Form
	f.Fuzz(func(t *testing.T, authz, rawQuery string) {
		r := base.request()
		r.URL.RawQuery = rawQuery
		r.Header.Set("Authorization", authz)
		params, _ := url.ParseQuery(rawQuery)
		s, err := Parse(r, params)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Code != CodeIncompleteSignature {
				t.Fatalf("Parse error %v is not an IncompleteSignature *Error", err)
			}
			return
		}
		if err := Verify(r, params, base.body, s, testSecret, s.Timestamp); err != nil {
			var ae *Error
			if !errors.As(err, &ae) {
				t.Fatalf("Verify error %v is not an *Error", err)
			}
		}
	})
}

func benchmarkVerify(b *testing.B, c captured) {
	r := c.request()
	params := c.params(b)
	s, err := Parse(r, params)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := Verify(r, params, c.body, s, testSecret, s.Timestamp); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyV3(b *testing.B) {
	benchmarkVerify(b, sdkCall(b, "", "POST", trickyQuery(), trickyBody()))
}

func BenchmarkVerifyV1(b *testing.B) {
	benchmarkVerify(b, sdkCall(b, "v2", "POST", trickyQuery(), trickyBody()))
}
