package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/certfleet/certfleet/internal/api"
	"github.com/certfleet/certfleet/internal/deploy/registry"
	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/store/sqlite"
	"github.com/certfleet/certfleet/internal/store/sqlstore"
)

type nopWaker struct{}

func (nopWaker) Wake() {}

// fixture is a console over a real API on a fresh SQLite store, with the
// root's console password set, served by httptest; now is its clock.
type fixture struct {
	st   *sqlstore.DB
	con  *Console
	srv  *httptest.Server
	root int64
	mu   sync.Mutex
	now  time.Time
}

const rootPW = "root-pass-1"

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "certfleet.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	box, err := secret.New(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.AccountEnsure(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, root: root, now: time.Now()}
	clock := func() time.Time { f.mu.Lock(); defer f.mu.Unlock(); return f.now }
	log := slog.New(slog.DiscardHandler)
	a := api.New(st, box, log, nopWaker{}, registry.New(registry.Options{}), root, api.Options{Clock: clock})
	f.con = New(st, a, box, log, Options{Clock: clock, UserFailures: 3, SourceFailures: 6})
	f.srv = httptest.NewServer(f.con.Handler())
	t.Cleanup(f.srv.Close)
	if err := st.LoginProfileCreate(ctx, store.LoginProfile{AccountID: root, PasswordHash: password.Hash(rootPW), Created: f.now, Updated: f.now}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) advance(d time.Duration) { f.mu.Lock(); f.now = f.now.Add(d); f.mu.Unlock() }

// browser is a cookie-keeping client of the fixture.
type browser struct {
	t    *testing.T
	f    *fixture
	c    *http.Client
	csrf string
}

func (f *fixture) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, f: f, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (a answer) code() string { s, _ := a.body["Code"].(string); return s }

func (b *browser) do(method, path string, form url.Values, hdr map[string]string) answer {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, b.f.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, body: map[string]any{}}
	json.Unmarshal(raw, &a.body)
	return a
}

func (b *browser) signIn(name, pw string) answer {
	b.t.Helper()
	a := b.do("POST", "/console/signin", url.Values{"Name": {name}, "Password": {pw}}, map[string]string{"X-Requested-With": "certfleet-console"})
	if a.status == 200 {
		b.csrf, _ = a.body["CSRF"].(string)
	}
	return a
}

func (b *browser) call(params url.Values) answer {
	b.t.Helper()
	return b.do("POST", "/console/api", params, map[string]string{"X-CSRF-Token": b.csrf})
}

func op(action string, kv ...string) url.Values {
	v := url.Values{"Action": {action}, "Version": {"2020-04-07"}}
	if strings.Contains(action, "User") && !strings.Contains(action, "Certificate") || strings.Contains(action, "LoginProfile") || strings.Contains(action, "Polic") {
		v.Set("Version", "2015-05-01")
	}
	for i := 0; i+1 < len(kv); i += 2 {
		v.Set(kv[i], kv[i+1])
	}
	return v
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	f := setup(t)
	b := f.browser(t)
	for _, path := range []string{"/console/", "/console/assets/app.js", "/console/whoami", "/console/nope"} {
		a := b.do("GET", path, nil, nil)
		csp := a.header.Get("Content-Security-Policy")
		if csp != CSP || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if a.header.Get("X-Content-Type-Options") != "nosniff" || a.header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("GET %s: headers %v", path, a.header)
		}
	}
	if a := b.do("GET", "/console/", nil, nil); a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /console/: %d %s", a.status, a.header.Get("Content-Type"))
	}
	for _, r := range []struct{ method, target string }{{"GET", "/"}, {"HEAD", "/"}} {
		req := httptest.NewRequest(r.method, r.target, nil)
		if got := IsBrowserRoot(req); got != (r.method == "GET") {
			t.Errorf("IsBrowserRoot(%s %s) = %v", r.method, r.target, got)
		}
	}
	for _, target := range []string{"/?Action=ListUserCertificateOrder&Version=2020-04-07", "/x"} {
		if IsBrowserRoot(httptest.NewRequest("GET", target, nil)) {
			t.Errorf("IsBrowserRoot(GET %s) = true: an API call would be redirected", target)
		}
	}
}

func TestSessionCookieAndSignOut(t *testing.T) {
	t.Parallel()
	f := setup(t)
	b := f.browser(t)
	if a := b.do("GET", "/console/whoami", nil, nil); a.status != 401 || a.code() != "SessionExpired" {
		t.Fatalf("whoami signed out: %d %v", a.status, a.body)
	}
	a := b.signIn("root", rootPW)
	if a.status != 200 || b.csrf == "" {
		t.Fatalf("sign-in: %d %v", a.status, a.body)
	}
	ck := a.header.Get("Set-Cookie")
	for _, want := range []string{CookieName + "=", "HttpOnly", "SameSite=Strict", "Path=/console/"} {
		if !strings.Contains(ck, want) {
			t.Errorf("Set-Cookie %q lacks %s", ck, want)
		}
	}
	if strings.Contains(ck, "Secure") {
		t.Errorf("Set-Cookie %q: Secure without TLS (the cookie would never come back)", ck)
	}
	w := b.do("GET", "/console/whoami", nil, nil)
	if w.status != 200 || w.body["Name"] != "root" || w.body["CSRF"] != b.csrf {
		t.Fatalf("whoami: %d %v", w.status, w.body)
	}
	if ok := w.body["Allowed"].(map[string]any)["yundun-cert:CreateCloudResource"]; ok != true {
		t.Errorf("root not allowed CreateCloudResource: %v", ok)
	}
	if a := b.call(op("ListUserCertificateOrder")); a.status != 200 {
		t.Fatalf("call: %d %v", a.status, a.body)
	}
	if a := b.do("POST", "/console/signout", url.Values{}, map[string]string{"X-CSRF-Token": b.csrf}); a.status != 200 {
		t.Fatalf("sign-out: %d %v", a.status, a.body)
	}
	if a := b.call(op("ListUserCertificateOrder")); a.status != 401 {
		t.Fatalf("call after sign-out: %d %v", a.status, a.body)
	}
}

func TestTimeouts(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		desc  string
		steps []time.Duration // advance, then call
		ok    bool
	}{
		{"used within the idle timeout, under the absolute one", []time.Duration{20 * time.Minute, 20 * time.Minute, 20 * time.Minute}, true},
		{"idle past 30 minutes", []time.Duration{31 * time.Minute}, false},
		{"kept busy past 12 hours", []time.Duration{
			25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute,
			25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute,
			25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute,
			25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute, 25 * time.Minute}, false},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			t.Parallel()
			f := setup(t)
			b := f.browser(t)
			b.signIn("root", rootPW)
			var last answer
			for _, d := range tc.steps {
				f.advance(d)
				last = b.call(op("ListUserCertificateOrder"))
			}
			if (last.status == 200) != tc.ok {
				t.Fatalf("last call: %d %v, want ok=%v", last.status, last.body, tc.ok)
			}
			if !tc.ok && last.code() != "SessionExpired" {
				t.Fatalf("code %q, want SessionExpired", last.code())
			}
		})
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	f := setup(t)
	b := f.browser(t)
	b.signIn("root", rootPW)
	upload := op("CreateContact", "Name", "ops", "Email", "ops@example.test")
	for _, tc := range []struct {
		desc string
		hdr  map[string]string
		code string
	}{
		{"no token", map[string]string{}, "InvalidCSRFToken"},
		{"another token", map[string]string{"X-CSRF-Token": "forged"}, "InvalidCSRFToken"},
		{"right token, other site's Origin", map[string]string{"X-CSRF-Token": b.csrf, "Origin": "https://evil.example"}, "InvalidOrigin"},
		{"right token, cross-site fetch", map[string]string{"X-CSRF-Token": b.csrf, "Sec-Fetch-Site": "cross-site"}, "InvalidOrigin"},
	} {
		a := b.do("POST", "/console/api", upload, tc.hdr)
		if a.status != 403 || a.code() != tc.code {
			t.Errorf("%s: %d %v, want 403 %s", tc.desc, a.status, a.body, tc.code)
		}
	}
	list, _, err := f.st.ContactList(context.Background(), store.ContactListParams{AccountID: f.root, Limit: 10})
	if err != nil || len(list) != 0 {
		t.Fatalf("a refused write happened: %v %v", list, err)
	}
	if a := b.do("POST", "/console/api", upload, map[string]string{"X-CSRF-Token": b.csrf, "Origin": f.srv.URL}); a.status != 200 {
		t.Fatalf("with token and own Origin: %d %v", a.status, a.body)
	}
	// Sign-in itself needs the console's header (no cross-site form posts).
	a := b.do("POST", "/console/signin", url.Values{"Name": {"root"}, "Password": {rootPW}}, nil)
	if a.status != 403 || a.code() != "InvalidOrigin" {
		t.Fatalf("sign-in without the header: %d %v", a.status, a.body)
	}
}

func TestLockout(t *testing.T) {
	t.Parallel()
	f := setup(t)
	b := f.browser(t)
	for i := range 3 {
		if a := b.signIn("root", "wrong-pass-1"); a.code() != "InvalidCredentials" {
			t.Fatalf("failure %d: %v", i, a.body)
		}
	}
	a := b.signIn("root", rootPW)
	if a.status != 429 || a.code() != "Throttling.SignIn" || !strings.Contains(a.body["Message"].(string), "locked for 15 minute") {
		t.Fatalf("right password while locked: %d %v", a.status, a.body)
	}
	// Unknown names count too (per user name), and the address is counted across names.
	for _, name := range []string{"nobody", "ghost@root", "x@nowhere"} {
		if a := b.signIn(name, "whatever-1"); a.code() != "InvalidCredentials" {
			t.Fatalf("%s: %v", name, a.body)
		}
	}
	if a := b.signIn("other", "whatever-1"); a.status != 429 || !strings.Contains(a.body["Message"].(string), "from your address") {
		t.Fatalf("7th failure from one address: %d %v", a.status, a.body)
	}
	f.advance(16 * time.Minute)
	if a := b.signIn("root", rootPW); a.status != 200 {
		t.Fatalf("after the lockout: %d %v", a.status, a.body)
	}
}

func TestRAMUserThroughTheSameAuthorization(t *testing.T) {
	t.Parallel()
	f := setup(t)
	root := f.browser(t)
	root.signIn("root", rootPW)
	for _, p := range []url.Values{
		op("CreateUser", "UserName", "reader"),
		op("CreateLoginProfile", "UserName", "reader", "Password", "reader-pass-1"),
		op("AttachPolicyToUser", "UserName", "reader", "PolicyType", "System", "PolicyName", "AliyunYundunCertReadOnlyAccess"),
	} {
		if a := root.call(p); a.status != 200 {
			t.Fatalf("%s: %d %v", p.Get("Action"), a.status, a.body)
		}
	}
	if a := root.call(op("CreateLoginProfile", "UserName", "reader", "Password", "short")); a.code() != "InvalidParameter.Password" && a.code() != "EntityAlreadyExists.User.LoginProfile" {
		t.Fatalf("second profile: %v", a.body)
	}
	r := f.browser(t)
	if a := r.signIn("reader@root", "reader-pass-1"); a.status != 200 {
		t.Fatalf("RAM sign-in: %d %v", a.status, a.body)
	}
	w := r.do("GET", "/console/whoami", nil, nil)
	allowed := w.body["Allowed"].(map[string]any)
	if allowed["yundun-cert:ListCloudResources"] != true || allowed["yundun-cert:CreateCloudResource"] != false || allowed["ram:CreateUser"] != false {
		t.Fatalf("read-only Allowed: %v", allowed)
	}
	if a := r.call(op("ListUserCertificateOrder")); a.status != 200 {
		t.Fatalf("read: %d %v", a.status, a.body)
	}
	// A forged write, with the session's own CSRF token: refused by RAM.
	if a := r.call(op("CreateContact", "Name", "x", "Email", "x@example.test")); a.status != 403 || a.code() != "Forbidden.RAM" {
		t.Fatalf("forged write: %d %v", a.status, a.body)
	}
	events, _, err := f.st.AuditList(context.Background(), store.AuditListParams{AccountID: f.root, Limit: 20})
	if err != nil {
		t.Fatal(err)
	}
	var denied, created bool
	for _, e := range events {
		if e.Action == "yundun-cert:CreateContact" && e.Code == "Forbidden.RAM" && e.Principal == "reader" && strings.HasPrefix(e.AccessKeyID, "console/") {
			denied = true
		}
		if e.Action == "ram:CreateUser" && e.Principal == "root" && strings.HasPrefix(e.AccessKeyID, "console/") {
			created = true
		}
	}
	for _, e := range events {
		if strings.Contains(e.Params, "reader-pass") {
			t.Fatalf("a password reached the audit trail: %s %s", e.Action, e.Params)
		}
	}
	if !denied || !created {
		t.Fatalf("audit trail lacks the console calls (denied %v, created %v): %+v", denied, created, events)
	}
	// A new password signs the user's sessions out.
	if a := root.call(op("UpdateLoginProfile", "UserName", "reader", "Password", "reader-pass-2")); a.status != 200 {
		t.Fatalf("UpdateLoginProfile: %v", a.body)
	}
	if a := r.call(op("ListUserCertificateOrder")); a.status != 401 {
		t.Fatalf("session after a password change: %d %v", a.status, a.body)
	}
	g := root.call(op("GetLoginProfile", "UserName", "reader"))
	if lp, _ := g.body["LoginProfile"].(map[string]any); lp == nil || lp["UserName"] != "reader" {
		t.Fatalf("GetLoginProfile: %v", g.body)
	}
	if a := root.call(op("DeleteLoginProfile", "UserName", "reader")); a.status != 200 {
		t.Fatalf("DeleteLoginProfile: %v", a.body)
	}
	if a := r.signIn("reader@root", "reader-pass-2"); a.code() != "InvalidCredentials" {
		t.Fatalf("sign-in without a profile: %v", a.body)
	}
}

func TestTOTP(t *testing.T) {
	t.Parallel()
	f := setup(t)
	b := f.browser(t)
	b.signIn("root", rootPW)
	hdr := map[string]string{"X-CSRF-Token": b.csrf}
	k := b.do("POST", "/console/mfa/begin", url.Values{}, hdr)
	sec, _ := k.body["Secret"].(string)
	if k.status != 200 || sec == "" {
		t.Fatalf("mfa/begin: %d %v", k.status, k.body)
	}
	if a := b.do("POST", "/console/mfa/confirm", url.Values{"Code": {"000000"}}, hdr); a.code() != "InvalidMFACode" {
		t.Fatalf("wrong code: %v", a.body)
	}
	code, _ := totp.GenerateCode(sec, time.Now())
	if a := b.do("POST", "/console/mfa/confirm", url.Values{"Code": {code}}, hdr); a.status != 200 {
		t.Fatalf("confirm: %d %v", a.status, a.body)
	}
	n := f.browser(t)
	if a := n.signIn("root", rootPW); a.code() != "MFARequired" {
		t.Fatalf("sign-in without a code: %v", a.body)
	}
	a := n.do("POST", "/console/signin", url.Values{"Name": {"root"}, "Password": {rootPW}, "Code": {code}}, map[string]string{"X-Requested-With": "certfleet-console"})
	if a.status != 200 {
		t.Fatalf("sign-in with a code: %d %v", a.status, a.body)
	}
}

func TestPFXUpload(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed: the PFX fixture is made with it")
	}
	f := setup(t)
	b := f.browser(t)
	b.signIn("root", rootPW)
	dir := t.TempDir()
	gen := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %v: %v\n%s", args, err, out)
		}
	}
	key, crt := filepath.Join(dir, "k.pem"), filepath.Join(dir, "c.pem")
	gen("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", crt,
		"-days", "30", "-subj", "/CN=pfx.example.test", "-addext", "subjectAltName=DNS:pfx.example.test")
	legacy, modern := filepath.Join(dir, "legacy.pfx"), filepath.Join(dir, "modern.pfx")
	gen("pkcs12", "-export", "-legacy", "-inkey", key, "-in", crt, "-out", legacy, "-passout", "pass:pfx-pass")
	gen("pkcs12", "-export", "-inkey", key, "-in", crt, "-out", modern, "-passout", "pass:pfx-pass")
	upload := func(file, name, pw string) answer {
		raw, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		return b.do("POST", "/console/pfx", url.Values{"Name": {name}, "Pfx": {base64.StdEncoding.EncodeToString(raw)}, "PfxPassword": {pw}},
			map[string]string{"X-CSRF-Token": b.csrf})
	}
	if a := upload(legacy, "pfx", "wrong"); a.status != 400 || !strings.Contains(a.body["Message"].(string), "password is wrong") {
		t.Fatalf("wrong password: %d %v", a.status, a.body)
	}
	if a := upload(modern, "pfx", "pfx-pass"); a.status != 400 || !strings.Contains(a.body["Message"].(string), "-legacy") {
		t.Fatalf("AES PFX: %d %v", a.status, a.body)
	}
	a := upload(legacy, "pfx", "pfx-pass")
	if a.status != 200 || a.body["CertId"] == nil {
		t.Fatalf("legacy PFX: %d %v", a.status, a.body)
	}
	list, _, err := f.st.CertificateList(context.Background(), store.CertificateListParams{AccountID: f.root, Limit: 5})
	if err != nil || len(list) != 1 || list[0].CommonName != "pfx.example.test" {
		t.Fatalf("after the PFX upload: %v %+v", err, list)
	}
}

func TestProfileRequirements(t *testing.T) {
	t.Parallel()
	f := setup(t)
	root := f.browser(t)
	root.signIn("root", rootPW)
	for _, p := range []url.Values{
		op("CreateUser", "UserName", "newbie"),
		op("CreateLoginProfile", "UserName", "newbie", "Password", "first-pass-1", "PasswordResetRequired", "true", "MFABindRequired", "true"),
		op("AttachPolicyToUser", "UserName", "newbie", "PolicyType", "System", "PolicyName", "AliyunYundunCertReadOnlyAccess"),
	} {
		if a := root.call(p); a.status != 200 {
			t.Fatalf("%s: %d %v", p.Get("Action"), a.status, a.body)
		}
	}
	b := f.browser(t)
	if a := b.signIn("newbie@root", "first-pass-1"); a.status != 200 {
		t.Fatalf("sign-in: %v", a.body)
	}
	if w := b.do("GET", "/console/whoami", nil, nil); w.body["PasswordResetRequired"] != true || w.body["MFABindRequired"] != true {
		t.Fatalf("whoami: %v", w.body)
	}
	list := op("ListUserCertificateOrder")
	if a := b.call(list); a.status != 403 || a.code() != "PasswordResetRequired" {
		t.Fatalf("call before the new password: %d %v", a.status, a.body)
	}
	hdr := map[string]string{"X-CSRF-Token": b.csrf}
	if a := b.do("POST", "/console/password", url.Values{"Current": {"wrong-pass-1"}, "New": {"second-pass-2"}}, hdr); a.code() != "InvalidCredentials" {
		t.Fatalf("wrong current password: %v", a.body)
	}
	if a := b.do("POST", "/console/password", url.Values{"Current": {"first-pass-1"}, "New": {"weak"}}, hdr); a.code() != "InvalidParameter.Password" {
		t.Fatalf("weak new password: %v", a.body)
	}
	a := b.do("POST", "/console/password", url.Values{"Current": {"first-pass-1"}, "New": {"second-pass-2"}}, hdr)
	if a.status != 200 {
		t.Fatalf("change password: %d %v", a.status, a.body)
	}
	b.csrf = a.body["CSRF"].(string) // a new session
	if a := b.call(list); a.status != 403 || a.code() != "MFABindRequired" {
		t.Fatalf("call before binding an authenticator: %d %v", a.status, a.body)
	}
	hdr = map[string]string{"X-CSRF-Token": b.csrf}
	k := b.do("POST", "/console/mfa/begin", url.Values{}, hdr)
	code, _ := totp.GenerateCode(k.body["Secret"].(string), time.Now())
	if a := b.do("POST", "/console/mfa/confirm", url.Values{"Code": {code}}, hdr); a.status != 200 {
		t.Fatalf("bind: %v", a.body)
	}
	if a := b.call(list); a.status != 200 {
		t.Fatalf("call after both: %d %v", a.status, a.body)
	}
	if a := f.browser(t).signIn("newbie@root", "first-pass-1"); a.code() != "InvalidCredentials" {
		t.Fatalf("the old password still signs in: %v", a.body)
	}
}
