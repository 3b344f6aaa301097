package api

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"

	"github.com/certfleet/certfleet/internal/metrics"
	"github.com/certfleet/certfleet/internal/testutil"
)

// rawForm sends an unsigned form POST of n bytes over its own connection and
// returns the status and error code answered. The body is written while the
// answer is read, as a flooding client would: the server may answer before
// reading it. When hold is not nil, only the first KiB of the body is sent and
// the connection waits for hold to close before the rest.
func rawForm(addr string, n int, hold <-chan struct{}) (int, string, error) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		return 0, "", err
	}
	defer conn.Close()
	prefix := "Action=ListContact&Version=2020-04-07&Pad="
	body := prefix + strings.Repeat("x", n-len(prefix))
	head := fmt.Sprintf("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nConnection: close\r\n\r\n", addr, n)
	go func() {
		if hold != nil {
			io.WriteString(conn, head+body[:1024])
			<-hold
			io.WriteString(conn, body[1024:])
			return
		}
		io.WriteString(conn, head+body) // errors: the server answered and closed early
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var eb struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Code, nil
}

// TestInflightBodyCap: 200 concurrent unsigned 1 MiB forms against a budget of
// 4 MiB of bodies in flight: the 4 that hold the budget are being read, the
// other 196 are answered 503 Throttling before their body is read, and a signed
// call still succeeds (its signature is checked from its headers, so its body
// is not a stranger's).
func TestInflightBodyCap(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	f := setup(t, Options{MaxBodyBytes: mib, MaxInflightBody: 4 * mib, StrangerRate: -1})

	hold := make(chan struct{})
	var holders sync.WaitGroup
	holderStatus := make(chan int, 4)
	for range 4 {
		holders.Add(1)
		go func() {
			defer holders.Done()
			status, _, _ := rawForm(f.addr, mib, hold)
			holderStatus <- status
		}()
	}
	testutil.WaitFor(t, 30*time.Second, "4 MiB of bodies in flight", func() (bool, error) {
		return f.api.bodies.n.Load() == 4*mib, nil
	})

	type answer struct {
		status int
		code   string
		err    error
	}
	answers := make(chan answer, 196)
	var flood sync.WaitGroup
	for range 196 {
		flood.Add(1)
		go func() {
			defer flood.Done()
			s, c, err := rawForm(f.addr, mib, nil)
			answers <- answer{s, c, err}
		}()
	}
	if _, err := f.sdk(t, f.keyID, f.secret, false, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
		t.Errorf("a signed call while the budget is full: %v", err)
	}
	flood.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil || a.status != http.StatusServiceUnavailable || a.code != "Throttling" {
			t.Fatalf("a request over the budget got %d %s (%v), want 503 Throttling", a.status, a.code, a.err)
		}
	}

	close(hold)
	holders.Wait()
	close(holderStatus)
	for s := range holderStatus {
		if s != http.StatusBadRequest { // read in full, then refused as unsigned
			t.Errorf("a request within the budget got %d, want 400 (not signed)", s)
		}
	}
	if n := f.api.bodies.n.Load(); n != 0 {
		t.Errorf("%d bytes still counted in flight after every request ended", n)
	}
}

// TestStrangerLimitPerSource: requests naming an unknown AccessKeyId, or not
// signed, spend the tokens of their source address; once spent, that source's
// strangers are refused with Throttling.Source, while a caller with a valid
// key from the same address is not.
func TestStrangerLimitPerSource(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{StrangerRate: 0.01}) // a bucket of 1, refilled every 100 s
	stranger := f.sdk(t, "LTAInobodyhere", "whatever", false, nil)
	_, err := stranger.ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
	if code, _ := sdkCode(t, err); code != "InvalidAccessKeyId.NotFound" {
		t.Fatalf("first unknown key: %s, want InvalidAccessKeyId.NotFound", code)
	}
	for _, v1 := range []bool{false, true} {
		_, err = f.sdk(t, "LTAInobodyhere", "whatever", v1, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if code, status := sdkCode(t, err); code != "Throttling.Source" || status != http.StatusBadRequest {
			t.Errorf("unknown key again (v1 %v): %d %s, want 400 Throttling.Source", v1, status, code)
		}
	}
	resp, err := http.Get("http://" + f.addr + "/?Action=ListContact&Version=2020-04-07")
	if err != nil {
		t.Fatal(err)
	}
	var eb struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&eb)
	resp.Body.Close()
	if eb.Code != "Throttling.Source" {
		t.Errorf("unsigned request from the same source: %s, want Throttling.Source", eb.Code)
	}
	for _, v1 := range []bool{false, true} {
		if _, err := f.sdk(t, f.keyID, f.secret, v1, nil).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{}); err != nil {
			t.Errorf("signed call (v1 %v) from the throttled source: %v", v1, err)
		}
	}
	// Another source is not affected.
	r := newRequest("GET", "/?Action=ListContact&Version=2020-04-07", "", "", nil)
	r.RemoteAddr = "198.51.100.7:4321"
	status, header, body := serve(t, f.api.Handler(), r)
	wantError(t, status, header, body, http.StatusBadRequest, "IncompleteSignature", "not signed")
}

// countingBody is a request body of n bytes that counts what was read of it.
type countingBody struct {
	mu        sync.Mutex
	read, len int
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.read >= b.len {
		return 0, io.EOF
	}
	n := min(len(p), b.len-b.read)
	for i := range n {
		p[i] = 'x'
	}
	b.read += n
	return n, nil
}

func (b *countingBody) Close() error { return nil }

// capture is a dara.HttpClient that keeps the request the SDK signed and
// answers an empty success without sending it.
type capture struct{ req *http.Request }

func (c *capture) Call(req *http.Request, _ *http.Transport) (*http.Response, error) {
	c.req = req
	return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(strings.NewReader(`{"RequestId":"x"}`)), Request: req}, nil
}

// TestLargeBodyRefusedBeforeRead: a 1 MiB body from a caller that cannot
// prove its key is refused without the server reading it.
func TestLargeBodyRefusedBeforeRead(t *testing.T) {
	t.Parallel()
	const mib = 1 << 20
	f := setup(t, Options{MaxBodyBytes: 2 * mib, StrangerRate: 0.01})
	signed := func(keyID, secret string, v1 bool) *http.Request {
		var c capture
		f.sdk(t, keyID, secret, v1, &c).ListUserCertificateOrder(&cas.ListUserCertificateOrderRequest{})
		if c.req == nil {
			t.Fatal("the SDK sent nothing")
		}
		return c.req
	}
	tests := []struct {
		desc   string
		from   *http.Request // headers and URL; nil: unsigned
		source string
		code   string
	}{
		{"V3, unknown AccessKeyId", signed("LTAInobodyhere", "x", false), "192.0.2.1:1", "InvalidAccessKeyId.NotFound"},
		{"V3, wrong secret", signed(f.keyID, "not-the-secret", false), "192.0.2.2:1", "SignatureDoesNotMatch"},
		{"V1, unknown AccessKeyId in the query", signed("LTAInobodyhere", "x", true), "192.0.2.3:1", "InvalidAccessKeyId.NotFound"},
		{"unsigned, from a source that spent its token", nil, "192.0.2.1:2", "Throttling.Source"},
	}
	for _, tc := range tests {
		body := &countingBody{len: mib}
		target := "/?Action=ListContact&Version=2020-04-07"
		if tc.from != nil {
			target = tc.from.URL.RequestURI()
		}
		r := httptest.NewRequest("POST", target, body)
		if tc.from != nil {
			for k, vs := range tc.from.Header { // as the server would parse them off the wire: canonical names
				for _, v := range vs {
					r.Header.Add(k, v)
				}
			}
			r.Host = tc.from.Host
		}
		if tc.from == nil || tc.from.Header.Get("Authorization") == "" {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else { // V3 signs content-type when present; the SDK signed none for this bodiless call
			r.Header.Del("Content-Type")
		}
		r.ContentLength = mib
		r.RemoteAddr = tc.source
		rec := httptest.NewRecorder()
		f.api.Handler().ServeHTTP(rec, r)
		var eb struct{ Code string }
		json.Unmarshal(rec.Body.Bytes(), &eb)
		if eb.Code != tc.code {
			t.Errorf("%s: answered %d %s, want %s", tc.desc, rec.Code, eb.Code, tc.code)
		}
		if body.read != 0 {
			t.Errorf("%s: the server read %d bytes of the body before refusing it", tc.desc, body.read)
		}
	}
}

// TestMetricsUnknownAction: a client-chosen Action that is not served is
// counted under action="unknown", never as a label value of its own.
func TestMetricsUnknownAction(t *testing.T) {
	t.Parallel()
	f := setup(t, Options{})
	for _, a := range []string{"NoSuchActionXq7", "NoSuchActionXq8"} {
		resp, err := http.Get("http://" + f.addr + "/?Action=" + a + "&Version=2020-04-07")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	rec := httptest.NewRecorder()
	metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	out := rec.Body.String()
	if strings.Contains(out, "NoSuchActionXq") {
		t.Errorf("an unknown Action became a label value:\n%s", grepLines(out, "NoSuchActionXq"))
	}
	if !strings.Contains(out, `certfleet_api_requests_total{action="unknown",code="InvalidAction.NotFound"}`) {
		t.Errorf("no action=\"unknown\" series for the unknown Actions:\n%s", grepLines(out, "certfleet_api_requests_total"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
