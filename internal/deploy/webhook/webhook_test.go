package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
)

const secret = "receiver-secret"

// delivery is one POST a receiver accepted as authentic.
type delivery struct {
	header http.Header
	fields map[string]any // the body, numbers as json.Number
}

// receiver is a real HTTP server that checks each POST the way
// docs/deployers.md tells receivers to, records it, then answers with respond.
type receiver struct {
	srv *httptest.Server
	// secret, when set, is required to have signed every delivery.
	secret  string
	respond http.HandlerFunc

	mu   sync.Mutex
	got  []delivery
	errs []string // why deliveries were refused
}

func newReceiver(t *testing.T, tls bool, secret string, respond http.HandlerFunc) *receiver {
	t.Helper()
	rc := &receiver{secret: secret, respond: respond}
	if tls {
		rc.srv = httptest.NewTLSServer(rc)
	} else {
		rc.srv = httptest.NewServer(rc)
	}
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if err := rc.check(r); err != nil {
		rc.mu.Lock()
		rc.errs = append(rc.errs, err.Error())
		rc.mu.Unlock()
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	rc.respond(w, r)
}

func (rc *receiver) check(r *http.Request) error {
	if r.Method != http.MethodPost {
		return fmt.Errorf("method %s, want POST", r.Method)
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return err
	}
	r.Body = io.NopCloser(bytes.NewReader(body)) // for responders that echo it
	if rc.secret != "" {
		mac := hmac.New(sha256.New, []byte(rc.secret))
		mac.Write(body)
		want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
		if !hmac.Equal([]byte(r.Header.Get("X-Certfleet-Signature")), []byte(want)) {
			return fmt.Errorf("bad signature %q", r.Header.Get("X-Certfleet-Signature"))
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var fields map[string]any
	if err := dec.Decode(&fields); err != nil {
		return fmt.Errorf("body is not a JSON object: %v", err)
	}
	if rc.secret != "" {
		ts, err := strconv.ParseInt(r.Header.Get("X-Certfleet-Timestamp"), 10, 64)
		if err != nil || fmt.Sprint(fields["Timestamp"]) != strconv.FormatInt(ts, 10) {
			return fmt.Errorf("X-Certfleet-Timestamp %q does not match the body's %v", r.Header.Get("X-Certfleet-Timestamp"), fields["Timestamp"])
		}
		if age := time.Since(time.Unix(ts, 0)); age < -time.Minute || age > time.Minute {
			return fmt.Errorf("timestamp %d is %s old", ts, age)
		}
	}
	rc.mu.Lock()
	rc.got = append(rc.got, delivery{header: r.Header.Clone(), fields: fields})
	rc.mu.Unlock()
	return nil
}

func (rc *receiver) deliveries(t *testing.T) []delivery {
	t.Helper()
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.errs) > 0 {
		t.Errorf("receiver refused deliveries: %v", rc.errs)
	}
	return slices.Clone(rc.got)
}

func request(t *testing.T, rawURL string, timeoutSeconds int, signed bool, b deploy.Bundle) deploy.Request {
	t.Helper()
	cfg := map[string]any{"Url": rawURL}
	if timeoutSeconds > 0 {
		cfg["TimeoutSeconds"] = timeoutSeconds
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	req := deploy.Request{
		JobID:    7,
		WorkerID: 9,
		Target:   deploy.Target{ResourceID: 3, CloudName: "webhook", CloudProduct: "WEBHOOK", Domain: "www.example.com", Config: raw},
		Bundle:   b,
	}
	if signed {
		req.Target.Access = &deploy.Access{ID: 5, CloudName: "webhook", SecretKey: secret}
	}
	return req
}

// wantFields compares a delivery's body with what b should produce.
func wantFields(t *testing.T, d delivery, action string, b deploy.Bundle) {
	t.Helper()
	sha := ""
	if blk, _ := pem.Decode([]byte(b.CertPEM)); blk != nil {
		sum := sha256.Sum256(blk.Bytes)
		sha = hex.EncodeToString(sum[:])
	}
	want := map[string]string{
		"Action": action, "JobId": "7", "WorkerId": "9", "ResourceId": "3", "Domain": "www.example.com",
		"CertId": strconv.FormatInt(b.CertID, 10), "CertName": b.Name,
		"Certificate": b.CertPEM, "Chain": b.ChainPEM, "FullChain": b.CertPEM + b.ChainPEM, "PrivateKey": b.KeyPEM,
		"Sha256": sha,
	}
	for k, v := range want {
		if got := fmt.Sprint(d.fields[k]); got != v {
			t.Errorf("body %s = %q, want %q", k, got, v)
		}
	}
	ts, err := strconv.ParseInt(fmt.Sprint(d.fields["Timestamp"]), 10, 64)
	if err != nil || time.Since(time.Unix(ts, 0)).Abs() > time.Minute {
		t.Errorf("body Timestamp = %v, want about now", d.fields["Timestamp"])
	}
	if len(d.fields) != len(want)+1 {
		t.Errorf("body has keys %v, want exactly %d", slices.Sorted(maps.Keys(d.fields)), len(want)+1)
	}
	for k, v := range map[string]string{
		"Content-Type":         "application/json",
		"User-Agent":           "certfleet",
		"X-Certfleet-Event":    action,
		"X-Certfleet-Delivery": "7-9",
	} {
		if got := d.header.Get(k); got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
}

// wantNoKey fails if err's message carries any part of the private key
// that is not also in the (public) certificates.
func wantNoKey(t *testing.T, err error, b deploy.Bundle) {
	t.Helper()
	if err == nil {
		return
	}
	if strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Errorf("error %q leaks the private key", err)
	}
	public := strings.Join(strings.Fields(b.FullChainPEM), "")
	for line := range strings.Lines(b.KeyPEM) {
		line = strings.TrimSpace(line)
		if strings.HasPrefix(line, "-----") || len(line) < 16 {
			continue
		}
		if piece := line[:16]; strings.Contains(err.Error(), piece) && !strings.Contains(public, piece) {
			t.Errorf("error %q leaks the private key", err)
		}
	}
}

func status(code int, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(code)
		io.WriteString(w, body)
	}
}

func TestDeploy(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc           string
		tls            bool // an https receiver, reached with opts.HTTPClient
		signed         bool
		timeoutSeconds int
		respond        http.HandlerFunc
		// wantErr is a substring of the error; empty for success.
		wantErr   string
		permanent bool
	}{
		{desc: "200 from an https receiver checking the signature", tls: true, signed: true, respond: status(200, "ok")},
		{desc: "204 from an http receiver without a credential", respond: status(204, "")},
		{
			desc:    "500 is transient and its body quoted on one line",
			signed:  true,
			respond: status(500, "database\r\nis   locked\t\x00"),
			wantErr: "receiver answered 500 Internal Server Error: database is locked",
		},
		{desc: "408 is transient", signed: true, respond: status(408, ""), wantErr: "receiver answered 408 Request Timeout: (empty body)"},
		{desc: "429 is transient", signed: true, respond: status(429, "slow down"), wantErr: "receiver answered 429 Too Many Requests: slow down"},
		{desc: "404 is permanent", signed: true, respond: status(404, "no such hook"), wantErr: "receiver answered 404 Not Found: no such hook", permanent: true},
		{
			desc:    "a long body is cut to 512 bytes",
			respond: status(502, strings.Repeat("x", 2000)),
			wantErr: ": " + strings.Repeat("x", 512),
		},
		{
			desc:   "a body quoting the certificate is quoted",
			signed: true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusUnprocessableEntity)
				io.Copy(w, r.Body) // its first 512 bytes stop before the key
			},
			wantErr:   `422 Unprocessable Entity: {"Action":"deploy","JobId":7,`,
			permanent: true,
		},
		{
			desc:   "a body echoing the private key is withheld",
			signed: true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				var p struct{ PrivateKey string }
				json.NewDecoder(r.Body).Decode(&p)
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, "cannot parse key:\n"+p.PrivateKey)
			},
			wantErr:   "400 Bad Request: (body withheld: it echoes the private key)",
			permanent: true,
		},
		{
			desc:   "a body echoing the key's base64 JSON-escaped, without its label, is withheld",
			signed: true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				var p struct{ PrivateKey string }
				json.NewDecoder(r.Body).Decode(&p)
				blk, _ := pem.Decode([]byte(p.PrivateKey))
				b64 := strings.ReplaceAll(base64.StdEncoding.EncodeToString(blk.Bytes), "/", `\/`)
				w.WriteHeader(http.StatusBadRequest)
				io.WriteString(w, `{"error":"bad key","der":"`+b64[20:]+`"}`)
			},
			wantErr:   "400 Bad Request: (body withheld: it echoes the private key)",
			permanent: true,
		},
		{
			desc:   "a redirect is not followed",
			signed: true,
			respond: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
			},
			wantErr:   "redirects are not followed, set Url to the final address (Location: /elsewhere)",
			permanent: true,
		},
		{
			desc:           "a receiver slower than TimeoutSeconds is transient",
			signed:         true,
			timeoutSeconds: 1,
			respond: func(w http.ResponseWriter, r *http.Request) {
				select {
				case <-time.After(10 * time.Second):
				case <-r.Context().Done():
				}
			},
			wantErr: "no response within 1s (TimeoutSeconds)",
		},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, tt.tls, map[bool]string{true: secret}[tt.signed], tt.respond)
			var opts Options
			if tt.tls {
				opts.HTTPClient = rc.srv.Client()
			}
			b := deploytest.Bundle(t, "www.example.com")
			req := request(t, rc.srv.URL+"/hooks/cert?token=t0ken", tt.timeoutSeconds, tt.signed, b)

			previous, err := New(opts).Deploy(context.Background(), req)
			if previous != nil {
				t.Errorf("previous = %q, want nil", previous)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Deploy: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Deploy: got %v, want an error containing %q", err, tt.wantErr)
			case err != nil && deploy.IsPermanent(err) != tt.permanent:
				t.Errorf("Deploy: IsPermanent(%v) = %v, want %v", err, deploy.IsPermanent(err), tt.permanent)
			}
			wantNoKey(t, err, b)
			if err != nil {
				if !strings.HasPrefix(err.Error(), "webhook: POST "+rc.srv.URL+"/hooks/cert: ") {
					t.Errorf("error %q does not start with the Url less its query", err)
				}
			}

			got := rc.deliveries(t)
			if len(got) != 1 {
				t.Fatalf("receiver got %d deliveries, want 1", len(got))
			}
			wantFields(t, got[0], "deploy", b)
			if sig := got[0].header.Get("X-Certfleet-Signature"); !tt.signed && sig != "" {
				t.Errorf("unsigned delivery has X-Certfleet-Signature %q", sig)
			}
		})
	}
}

func TestDeployConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := deploytest.Bundle(t, "www.example.com")
	_, err = New(Options{}).Deploy(context.Background(), request(t, "http://"+addr+"/hook", 0, true, b))
	if err == nil || deploy.IsPermanent(err) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("got %v, want a transient connection refused error", err)
	}
	if want := "webhook: POST http://" + addr + "/hook: "; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q does not start with %q", err, want)
	}
}

func TestDeployEmptyBundle(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, false, "", status(200, ""))
	_, err := New(Options{}).Deploy(context.Background(), request(t, rc.srv.URL, 0, false, deploy.Bundle{CertID: 4}))
	if err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), "certificate 4 has no certificate or no private key") {
		t.Errorf("got %v, want a permanent error naming the empty certificate", err)
	}
	if got := rc.deliveries(t); len(got) != 0 {
		t.Errorf("receiver got %d deliveries, want none", len(got))
	}
}

func TestDeployCanceled(t *testing.T) {
	t.Parallel()
	rc := newReceiver(t, false, "", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := New(Options{}).Deploy(ctx, request(t, rc.srv.URL, 0, false, deploytest.Bundle(t, "www.example.com")))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want an error wrapping the context's", err)
	}
}

func TestRollback(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc   string
		bundle func(t *testing.T) deploy.Bundle
	}{
		{desc: "to the certificate held before", bundle: func(t *testing.T) deploy.Bundle { return deploytest.Bundle(t, "old.example.com") }},
		{desc: "to nothing, so the receiver removes it", bundle: func(*testing.T) deploy.Bundle { return deploy.Bundle{} }},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			rc := newReceiver(t, false, secret, status(200, ""))
			b := tt.bundle(t)
			if err := New(Options{}).Rollback(context.Background(), request(t, rc.srv.URL, 0, true, b), []byte("ignored")); err != nil {
				t.Fatalf("Rollback: %v", err)
			}
			got := rc.deliveries(t)
			if len(got) != 1 {
				t.Fatalf("receiver got %d deliveries, want 1", len(got))
			}
			wantFields(t, got[0], "rollback", b)
		})
	}
}

func TestValidateConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  string
		want string // empty: accepted
	}{
		{desc: "https with a path", cfg: `{"Url":"https://hooks.example.com/certs"}`},
		{desc: "http with a port and the longest timeout", cfg: `{"Url":"http://10.0.0.5:8080/","TimeoutSeconds":300}`},
		{desc: "no Url", cfg: `{}`, want: `Config key "Url" is required for webhook/WEBHOOK`},
		{desc: "an empty Config", cfg: ``, want: `Config key "Url" is required`},
		{desc: "another scheme", cfg: `{"Url":"ftp://hooks.example.com/"}`, want: "must start with https:// or http://"},
		{desc: "a relative Url", cfg: `{"Url":"/hooks"}`, want: "must start with https://"},
		{desc: "no host", cfg: `{"Url":"https:///hooks"}`, want: "has no host"},
		{desc: "a Url that does not parse", cfg: `{"Url":"https://exa mple.com/"}`, want: `Config key "Url" is not a URL: invalid character " " in host name`},
		{desc: "a Url that is not a string", cfg: `{"Url":true}`, want: `Config key "Url" must be a string (got "true")`},
		{desc: "a timeout too long", cfg: `{"Url":"https://h.example/","TimeoutSeconds":301}`, want: `Config key "TimeoutSeconds" must be a number from 0 to 300 (got "301")`},
		{desc: "a timeout given as a string", cfg: `{"Url":"https://h.example/","TimeoutSeconds":"30"}`},
		{desc: "a negative timeout", cfg: `{"Url":"https://h.example/","TimeoutSeconds":-1}`, want: `Config key "TimeoutSeconds" must be a number from 0 to 300 (got "-1")`},
		{desc: "an unknown key", cfg: `{"Url":"https://h.example/","Secret":"x"}`, want: `Config key "Secret" is unknown for webhook/WEBHOOK; known keys: Url, TimeoutSeconds`},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			err := deploy.Validate(New(Options{}), json.RawMessage(tt.cfg), false)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("got %v, want nil", err)
			case tt.want != "" && (err == nil || !deploy.IsPermanent(err) || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("got %v, want a permanent webhook error containing %q", err, tt.want)
			}
			if tt.want == "" {
				return
			}
			// Deploy refuses it the same way, without a request.
			_, err = New(Options{}).Deploy(context.Background(), deploy.Request{Target: deploy.Target{Config: json.RawMessage(tt.cfg)}})
			if err == nil || !deploy.IsPermanent(err) {
				t.Errorf("Deploy: got %v, want a permanent error", err)
			}
		})
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		desc string
		cfg  string
		want string
	}{
		{desc: "https default port", cfg: `{"Url":"https://Hooks.Example.com/certs"}`, want: "hooks.example.com:443"},
		{desc: "http default port", cfg: `{"Url":"http://hooks.example.com"}`, want: "hooks.example.com:80"},
		{desc: "explicit port", cfg: `{"Url":"http://hooks.example.com:8080/x?y=1"}`, want: "hooks.example.com:8080"},
		{desc: "IPv6", cfg: `{"Url":"https://[::1]:9443/"}`, want: "[::1]:9443"},
		{desc: "bad Config", cfg: `{"Url":"mailto:a@b"}`, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.desc, func(t *testing.T) {
			t.Parallel()
			if got := New(Options{}).Host(deploy.Target{Config: json.RawMessage(tt.cfg)}); got != tt.want {
				t.Errorf("Host = %q, want %q", got, tt.want)
			}
		})
	}
}
