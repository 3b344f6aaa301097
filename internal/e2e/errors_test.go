package e2e

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	openapiutil "github.com/alibabacloud-go/darabonba-openapi/v2/utils"
	"github.com/alibabacloud-go/tea/dara"
	"github.com/alibabacloud-go/tea/tea"
	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" driver, for TestHealthz

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// This file checks the error answers of a real server through the official
// SDK: the code and HTTP status the SDK reports, and the raw body behind them.

// wireTap is a dara.HttpClient (the SDK's Config.HttpClient): it lets rewrite
// change a request after the SDK signed it, sends it with the transport the SDK
// built, and keeps the last response for inspection.
type wireTap struct {
	rewrite func(*http.Request) error // nil: send as signed

	mu     sync.Mutex
	status int
	header http.Header
	body   []byte
}

func (w *wireTap) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	if w.rewrite != nil {
		if err := w.rewrite(req); err != nil {
			return nil, err
		}
	}
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if tr != nil {
		hc.Transport = tr
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	return w.keep(resp)
}

// keep reads resp's body, remembers it, and hands back an unread copy.
func (w *wireTap) keep(resp *http.Response) (*http.Response, error) {
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	w.status, w.header, w.body = resp.StatusCode, resp.Header.Clone(), body
	w.mu.Unlock()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

func (w *wireTap) last() (int, http.Header, []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status, w.header, w.body
}

// replayTap records the bytes of the first request the SDK sends and, on every
// later call, writes those recorded bytes to the server again instead of the
// request it is given: a replay attack with a valid signature and a spent nonce.
type replayTap struct {
	wireTap
	first []byte
	addr  string
}

func (p *replayTap) Call(req *http.Request, tr *http.Transport) (*http.Response, error) {
	p.mu.Lock()
	first, addr := p.first, p.addr
	p.mu.Unlock()
	if first == nil {
		raw, err := httputil.DumpRequestOut(req, true)
		if err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.first, p.addr = raw, req.URL.Host
		p.mu.Unlock()
		return p.wireTap.Call(req, tr)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := conn.Write(first); err != nil {
		return nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, err
	}
	return p.keep(resp)
}

// setRawHeader sets name exactly as spelled, dropping any other spelling: the
// SDK stores its headers under lower-case keys, which Header.Set would miss.
func setRawHeader(h http.Header, name, value string) {
	for k := range h {
		if strings.EqualFold(k, name) {
			delete(h, k)
		}
	}
	h[name] = []string{value}
}

// restamp returns a rewrite that moves a signed request's timestamp by age and
// signs it again, correctly, with secret: only the time is wrong afterwards.
func restamp(keyID, secret string, age time.Duration) func(*http.Request) error {
	stamp := time.Now().Add(age).UTC().Format("2006-01-02T15:04:05Z")
	return func(req *http.Request) error {
		if strings.HasPrefix(req.Header.Get("Authorization"), "ACS3-") {
			setRawHeader(req.Header, "x-acs-date", stamp)
			headers := map[string]*string{"host": tea.String(req.Host)}
			for k, vs := range req.Header {
				if lk := strings.ToLower(k); lk != "authorization" && lk != "host" && len(vs) > 0 {
					headers[lk] = tea.String(vs[0])
				}
			}
			query := map[string]*string{}
			for k, vs := range req.URL.Query() {
				query[k] = tea.String(vs[0])
			}
			r := &dara.Request{Method: tea.String(req.Method), Pathname: tea.String(req.URL.Path), Query: query, Headers: headers}
			authz := openapiutil.GetAuthorization(r, tea.String("ACS3-HMAC-SHA256"), headers["x-acs-content-sha256"],
				tea.String(keyID), tea.String(secret))
			setRawHeader(req.Header, "Authorization", tea.StringValue(authz))
			return nil
		}
		q := req.URL.Query()
		if q.Get("Signature") == "" {
			return fmt.Errorf("restamp: neither a V3 nor a V1 request: %s", req.URL)
		}
		q.Set("Timestamp", stamp)
		q.Del("Signature")
		signed := map[string]*string{}
		for k, vs := range q {
			signed[k] = tea.String(vs[0])
		}
		q.Set("Signature", tea.StringValue(openapiutil.GetRPCSignature(signed, tea.String(req.Method), tea.String(secret))))
		req.URL.RawQuery = q.Encode()
		return nil
	}
}

func (s *server) sdkConfig(keyID, secret string, v1 bool, hc dara.HttpClient) *openapi.Config {
	cfg := &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(s.addr), Protocol: tea.String("http"), HttpClient: hc}
	if v1 {
		cfg.SignatureAlgorithm = tea.String("v2")
	}
	return cfg
}

// casVia is an official CAS SDK client whose HTTP goes through hc.
func (s *server) casVia(keyID, secret string, v1 bool, hc dara.HttpClient) *cas.Client {
	s.t.Helper()
	c, err := cas.NewClient(s.sdkConfig(keyID, secret, v1, hc))
	if err != nil {
		s.t.Fatalf("sdk client: %v", err)
	}
	return c
}

// genericVia is the SDK's generic OpenAPI client (as callOwn uses), through hc.
func (s *server) genericVia(keyID, secret string, v1 bool, hc dara.HttpClient) *openapi.Client {
	s.t.Helper()
	c, err := openapi.NewClient(s.sdkConfig(keyID, secret, v1, hc))
	if err != nil {
		s.t.Fatalf("sdk client: %v", err)
	}
	return c
}

// callGeneric calls action at version with query parameters and, when body is
// not nil, a form body.
func callGeneric(c *openapi.Client, action, version string, query map[string]string, body map[string]any) (map[string]any, error) {
	q := map[string]*string{}
	for k, v := range query {
		q[k] = tea.String(v)
	}
	params := &openapiutil.Params{Action: tea.String(action), Version: tea.String(version), Protocol: tea.String("HTTP"),
		Pathname: tea.String("/"), Method: tea.String("POST"), AuthType: tea.String("AK"), Style: tea.String("RPC"),
		ReqBodyType: tea.String("formData"), BodyType: tea.String("json")}
	req := &openapiutil.OpenApiRequest{Query: q}
	if body != nil {
		req.Body = body
	}
	resp, err := c.CallApi(params, req, &dara.RuntimeOptions{})
	if err != nil {
		return nil, err
	}
	b, _ := resp["body"].(map[string]any)
	return b, nil
}

var requestIDPattern = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)

// checkErrorBody asserts an error response is JSON with RequestId (an upper-case
// UUID), HostId, Code (= code), Message and Recommend, all non-empty.
func checkErrorBody(t *testing.T, status int, header http.Header, body []byte, code string) map[string]any {
	t.Helper()
	if status < 400 {
		t.Fatalf("status %d, want an error status; body %s", status, body)
	}
	if ct := header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %q", err, body)
	}
	for _, k := range []string{"RequestId", "HostId", "Code", "Message", "Recommend"} {
		if v, _ := m[k].(string); v == "" {
			t.Errorf("error body has no %s: %s", k, body)
		}
	}
	if id, _ := m["RequestId"].(string); !requestIDPattern.MatchString(id) {
		t.Errorf("RequestId %q is not an upper-case UUID", id)
	}
	if m["Code"] != code {
		t.Errorf("body Code = %v, want %s", m["Code"], code)
	}
	return m
}

// certTotal is how many certificates ListUserCertificateOrder shows.
func certTotal(t *testing.T, c *cas.Client) int64 {
	t.Helper()
	l, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{ShowSize: tea.Int64(1000)})
	if err != nil {
		t.Fatalf("list certificates: %v", err)
	}
	return tea.Int64Value(l.Body.TotalCount)
}

func uploadRaw(c *cas.Client, name, cert, key string) error {
	req := &cas.UploadUserCertificateRequest{Cert: tea.String(cert), Key: tea.String(key)}
	if name != "" {
		req.Name = tea.String(name)
	}
	_, err := c.UploadUserCertificate(req)
	return err
}

func TestErrorCodes(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{})
		good := srv.client(false)
		a := certstest.New(t, certstest.Options{DNSNames: []string{"a.example.test"}})
		b := certstest.New(t, certstest.Options{DNSNames: []string{"b.example.test"}})
		if err := uploadRaw(good, "taken", a.CertPEM, a.KeyPEM); err != nil {
			t.Fatalf("upload: %v", err)
		}
		list := func(c *cas.Client) error {
			_, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
			return err
		}
		tests := []struct {
			desc   string
			call   func(tap *wireTap) error
			code   string
			status int
			msg    string // in the error message, when set
		}{
			{desc: "wrong secret, V3", code: "SignatureDoesNotMatch", status: 400,
				call: func(tap *wireTap) error { return list(srv.casVia(srv.keyID, "not-the-secret", false, tap)) }},
			{desc: "wrong secret, V1", code: "SignatureDoesNotMatch", status: 400,
				call: func(tap *wireTap) error { return list(srv.casVia(srv.keyID, "not-the-secret", true, tap)) }},
			{desc: "unknown AccessKeyId, V3", code: "InvalidAccessKeyId.NotFound", status: 404, msg: "LTAInobody",
				call: func(tap *wireTap) error { return list(srv.casVia("LTAInobody", srv.secret, false, tap)) }},
			{desc: "unknown AccessKeyId, V1", code: "InvalidAccessKeyId.NotFound", status: 404, msg: "LTAInobody",
				call: func(tap *wireTap) error { return list(srv.casVia("LTAInobody", srv.secret, true, tap)) }},
			{desc: "timestamp 20 minutes old, V3", code: "InvalidTimeStamp.Expired", status: 400,
				call: func(tap *wireTap) error {
					tap.rewrite = restamp(srv.keyID, srv.secret, -20*time.Minute)
					return list(srv.casVia(srv.keyID, srv.secret, false, tap))
				}},
			{desc: "timestamp 20 minutes old, V1", code: "InvalidTimeStamp.Expired", status: 400,
				call: func(tap *wireTap) error {
					tap.rewrite = restamp(srv.keyID, srv.secret, -20*time.Minute)
					return list(srv.casVia(srv.keyID, srv.secret, true, tap))
				}},
			{desc: "timestamp 20 minutes ahead, V3", code: "InvalidTimeStamp.Expired", status: 400,
				call: func(tap *wireTap) error {
					tap.rewrite = restamp(srv.keyID, srv.secret, 20*time.Minute)
					return list(srv.casVia(srv.keyID, srv.secret, false, tap))
				}},
			{desc: "upload without Name", code: "MissingParameter", status: 400, msg: "Name is mandatory for this action.",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "", b.CertPEM, b.KeyPEM)
				}},
			{desc: "upload without Key, V1", code: "MissingParameter", status: 400, msg: "Key is mandatory for this action.",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, true, tap), "no-key", b.CertPEM, "")
				}},
			{desc: "key of another certificate", code: "InvalidParameter", status: 400, msg: "Key",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "mismatch", b.CertPEM, a.KeyPEM)
				}},
			{desc: "garbage certificate PEM", code: "InvalidParameter", status: 400, msg: "Cert",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "garbage-cert", "-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n", b.KeyPEM)
				}},
			{desc: "garbage key PEM", code: "InvalidParameter", status: 400, msg: "Key",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "garbage-key", b.CertPEM, "hello, world")
				}},
			{desc: "chain that does not chain", code: "InvalidParameter", status: 400, msg: "Cert",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "broken-chain", b.LeafPEM+a.IntermediatePEM, b.KeyPEM)
				}},
			{desc: "name of 129 characters", code: "InvalidParameter", status: 400, msg: "Name",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), strings.Repeat("n", 129), b.CertPEM, b.KeyPEM)
				}},
			{desc: "duplicate name, V3", code: "NameAlreadyExists", status: 400, msg: "taken",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, false, tap), "taken", b.CertPEM, b.KeyPEM)
				}},
			{desc: "duplicate name, V1", code: "NameAlreadyExists", status: 400, msg: "taken",
				call: func(tap *wireTap) error {
					return uploadRaw(srv.casVia(srv.keyID, srv.secret, true, tap), "taken", b.CertPEM, b.KeyPEM)
				}},
			{desc: "unknown action, V3", code: "InvalidAction.NotFound", status: 404, msg: "NoSuchAction",
				call: func(tap *wireTap) error {
					_, err := callGeneric(srv.genericVia(srv.keyID, srv.secret, false, tap), "NoSuchAction", "2020-04-07", nil, nil)
					return err
				}},
			{desc: "unknown action, V1", code: "InvalidAction.NotFound", status: 404, msg: "NoSuchAction",
				call: func(tap *wireTap) error {
					_, err := callGeneric(srv.genericVia(srv.keyID, srv.secret, true, tap), "NoSuchAction", "2020-04-07", nil, nil)
					return err
				}},
			{desc: "wrong version, V3", code: "InvalidVersion", status: 400, msg: "2019-01-01",
				call: func(tap *wireTap) error {
					_, err := callGeneric(srv.genericVia(srv.keyID, srv.secret, false, tap), "ListUserCertificateOrder", "2019-01-01", nil, nil)
					return err
				}},
			{desc: "wrong version, V1", code: "InvalidVersion", status: 400, msg: "2019-01-01",
				call: func(tap *wireTap) error {
					_, err := callGeneric(srv.genericVia(srv.keyID, srv.secret, true, tap), "ListUserCertificateOrder", "2019-01-01", nil, nil)
					return err
				}},
		}
		for _, tc := range tests {
			t.Run(tc.desc, func(t *testing.T) {
				before := certTotal(t, good)
				tap := &wireTap{}
				err := tc.call(tap)
				code, status := sdkErr(t, err)
				if code != tc.code || status != tc.status {
					t.Fatalf("got %s %d, want %s %d (%v)", code, status, tc.code, tc.status, err)
				}
				if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
					t.Errorf("message %q does not mention %q", err.Error(), tc.msg)
				}
				st, h, body := tap.last()
				if st != tc.status {
					t.Errorf("wire status %d, SDK said %d", st, tc.status)
				}
				checkErrorBody(t, st, h, body, tc.code)
				if after := certTotal(t, good); after != before {
					t.Errorf("certificates listed: %d before the refused request, %d after", before, after)
				}
			})
		}
		if n := certTotal(t, good); n != 1 {
			t.Errorf("%d certificates stored, want only the first upload", n)
		}
	})
}

func TestErrorReplayedNonce(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{})
		good := srv.client(false)
		for _, v1 := range []bool{false, true} {
			t.Run(fmt.Sprintf("v1=%v", v1), func(t *testing.T) {
				before := certTotal(t, good)
				tap := &replayTap{}
				c := srv.casVia(srv.keyID, srv.secret, v1, tap)
				ch := certstest.New(t, certstest.Options{DNSNames: []string{"replay.example.test"}})
				name := fmt.Sprintf("replay-v1-%v", v1)
				if err := uploadRaw(c, name, ch.CertPEM, ch.KeyPEM); err != nil {
					t.Fatalf("first upload: %v", err)
				}
				replay := func(when, want string) {
					t.Helper()
					// Whatever the SDK is asked, the tap sends the recorded upload again.
					err := uploadRaw(c, name+"-other", ch.CertPEM, ch.KeyPEM)
					code, status := sdkErr(t, err)
					if code != want || status != 400 {
						t.Fatalf("%s: replay got %s %d (%v), want %s 400", when, code, status, err, want)
					}
					st, h, body := tap.last()
					checkErrorBody(t, st, h, body, want)
				}
				replay("before restart", "SignatureNonceUsed")
				srv.restart()
				// On SQLite a crashed run's nonces were answered from memory:
				// after a kill -9, a request signed before the crashed run's
				// lease is refused as signed before the epoch (decisions.md,
				// issue 14, signed reads), whether its nonce reached the disk
				// or not. PostgreSQL finds the nonce itself.
				afterCrash := "SignatureNonceUsed"
				if engine == "sqlite" {
					afterCrash = "InvalidTimeStamp.Expired"
				}
				replay("after kill -9 and restart", afterCrash)
				if after := certTotal(t, good); after != before+1 {
					t.Errorf("certificates: %d before, %d after one upload and its replays", before, after)
				}
			})
		}
	})
}

func TestErrorThrottling(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{args: []string{"--rate-limit", "2", "--rate-burst", "2"}})
		tap := &wireTap{}
		c := srv.casVia(srv.keyID, srv.secret, false, tap)
		var ok int
		for i := 0; i < 50; i++ {
			_, err := c.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
			if err == nil {
				ok++
				continue
			}
			code, status := sdkErr(t, err)
			if code != "Throttling.User" || status != 400 {
				t.Fatalf("request %d: %s %d (%v), want Throttling.User 400", i+1, code, status, err)
			}
			if ok < 2 {
				t.Errorf("throttled after %d requests; the burst is 2", ok)
			}
			st, h, body := tap.last()
			checkErrorBody(t, st, h, body, "Throttling.User")
			if h.Get("x-ratelimit-user-api") == "" {
				t.Errorf("throttled response has no x-ratelimit-user-api header: %v", h)
			}
			return
		}
		t.Fatalf("50 requests at full speed were never throttled with --rate-limit 2 --rate-burst 2")
	})
}

func TestErrorBodyTooLarge(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{args: []string{"--max-body-bytes", "2048"}})
		// A small form body is read and its fields used.
		tap := &wireTap{}
		c := srv.genericVia(srv.keyID, srv.secret, false, tap)
		resp, err := callGeneric(c, "CreateContact", "2020-04-07", nil, map[string]any{"Name": "from-the-body", "Email": "body@example.test"})
		if err != nil {
			t.Fatalf("CreateContact with a small form body: %v", err)
		}
		if id := idOf(t, resp, "ContactId"); id <= 0 {
			t.Fatalf("ContactId = %d", id)
		}
		list := srv.mustOwn("ListContact", nil)
		if !strings.Contains(fmt.Sprint(list), "from-the-body") {
			t.Fatalf("the contact named in the form body is not listed: %v", list)
		}
		for _, v1 := range []bool{false, true} {
			tap := &wireTap{}
			c := srv.genericVia(srv.keyID, srv.secret, v1, tap)
			_, err := callGeneric(c, "CreateContact", "2020-04-07", nil, map[string]any{"Name": strings.Repeat("x", 8<<10)})
			code, status := sdkErr(t, err)
			if code != "InvalidParameter" || status != 413 {
				t.Fatalf("v1=%v: 8 KiB body got %s %d (%v), want InvalidParameter 413", v1, code, status, err)
			}
			st, h, body := tap.last()
			m := checkErrorBody(t, st, h, body, "InvalidParameter")
			if msg, _ := m["Message"].(string); !strings.Contains(msg, "2048") {
				t.Errorf("message %q does not name the limit", msg)
			}
		}
	})
}

// TestErrorBodyShape sends raw HTTP, unsigned or malformed, and checks every
// error answer has the body the SDK expects.
func TestErrorBodyShape(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{})
		base := "http://" + srv.addr
		form := "application/x-www-form-urlencoded"
		tests := []struct {
			desc    string
			method  string
			path    string
			ctype   string
			body    string
			headers map[string]string
			code    string
			status  int
		}{
			{desc: "unsigned POST form", method: "POST", path: "/", ctype: form, body: "Action=ListUserCertificateOrder&Version=2020-04-07",
				code: "IncompleteSignature", status: 400},
			{desc: "unsigned GET query", method: "GET", path: "/?Action=ListUserCertificateOrder&Version=2020-04-07",
				code: "IncompleteSignature", status: 400},
			{desc: "malformed V3 Authorization", method: "POST", path: "/", headers: map[string]string{
				"Authorization": "ACS3-HMAC-SHA256 Credential=x", "x-acs-action": "ListUserCertificateOrder", "x-acs-version": "2020-04-07"},
				code: "IncompleteSignature", status: 400},
			{desc: "V1 with a bad SignatureMethod", method: "GET", path: "/?Action=ListUserCertificateOrder&Version=2020-04-07&AccessKeyId=" + url.QueryEscape(srv.keyID) +
				"&SignatureMethod=HMAC-MD5&SignatureVersion=1.0&SignatureNonce=n1&Timestamp=2020-01-01T00:00:00Z&Signature=AAAA",
				code: "IncompleteSignature", status: 400},
			{desc: "no Action", method: "POST", path: "/", ctype: form, body: "Version=2020-04-07", code: "MissingParameter", status: 400},
			{desc: "no Version", method: "POST", path: "/", ctype: form, body: "Action=ListUserCertificateOrder", code: "MissingParameter", status: 400},
			{desc: "unknown action", method: "POST", path: "/", ctype: form, body: "Action=NoSuchAction&Version=2020-04-07", code: "InvalidAction.NotFound", status: 404},
			{desc: "wrong version", method: "POST", path: "/", ctype: form, body: "Action=ListUserCertificateOrder&Version=2019-01-01", code: "InvalidVersion", status: 400},
			{desc: "path other than /", method: "POST", path: "/v1/certificates", ctype: form, body: "Action=ListUserCertificateOrder&Version=2020-04-07",
				code: "InvalidAction.NotFound", status: 404},
			{desc: "PUT", method: "PUT", path: "/", ctype: form, body: "Action=ListUserCertificateOrder&Version=2020-04-07", code: "InvalidParameter", status: 405},
			{desc: "malformed form body", method: "POST", path: "/", ctype: form, body: "Action=%zz", code: "InvalidParameter", status: 400},
		}
		for _, tc := range tests {
			t.Run(tc.desc, func(t *testing.T) {
				var body io.Reader
				if tc.body != "" {
					body = strings.NewReader(tc.body)
				}
				req, err := http.NewRequest(tc.method, base+tc.path, body)
				if err != nil {
					t.Fatal(err)
				}
				if tc.ctype != "" {
					req.Header.Set("Content-Type", tc.ctype)
				}
				for k, v := range tc.headers {
					req.Header.Set(k, v)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
				}
				checkErrorBody(t, resp.StatusCode, resp.Header, b, tc.code)
			})
		}
		// http.Post, the plainest client there is.
		resp, err := http.Post(base+"/", form, strings.NewReader("Action=ListUserCertificateOrder&Version=2020-04-07"))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := checkErrorBody(t, resp.StatusCode, resp.Header, b, "IncompleteSignature")
		if resp.StatusCode != 400 || len(m) < 5 {
			t.Fatalf("unsigned http.Post: %d %s", resp.StatusCode, b)
		}
	})
}

func TestHealthz(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		srv := startServer(t, engine, serverOpts{})
		get := func() (int, string) {
			t.Helper()
			resp, err := http.Get("http://" + srv.addr + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, string(b)
		}
		if st, body := get(); st != 200 || strings.TrimSpace(body) != "ok" {
			t.Fatalf("/healthz = %d %q, want 200 ok", st, body)
		}
		// The API still answers alongside.
		if _, err := srv.client(false).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
			t.Fatalf("list: %v", err)
		}
		if engine != "postgres" {
			return
		}
		// When PostgreSQL stops answering for this database, /healthz says so;
		// once it answers again, so does /healthz.
		name := strings.TrimPrefix(mustParseURL(t, srv.database).Path, "/")
		admin, err := sql.Open("pgx", testutil.PostgresAdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		exec := func(q string) {
			t.Helper()
			if _, err := admin.ExecContext(ctx, q); err != nil {
				t.Fatalf("%s: %v", q, err)
			}
		}
		exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS false`)
		restored := false
		defer func() {
			if !restored {
				admin.Exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`)
			}
		}()
		exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `' AND pid <> pg_backend_pid()`)
		waitFor(t, 20*time.Second, "/healthz to fail while the database refuses connections", func() (bool, error) {
			st, _ := get()
			return st == http.StatusServiceUnavailable, nil
		})
		exec(`ALTER DATABASE ` + name + ` ALLOW_CONNECTIONS true`)
		restored = true
		waitFor(t, 20*time.Second, "/healthz to recover", func() (bool, error) {
			st, _ := get()
			return st == 200, nil
		})
	})
}

func mustParseURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
