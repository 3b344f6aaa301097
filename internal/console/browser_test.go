package console_test

// Browser tests: a real certfleet node (server.Run, the engine included) on
// each store engine, driven through Debian's chromium by chromedp. Each flow
// leaves a screenshot in $CERTFLEET_ARTIFACTS (or the test's temporary
// directory) and logs its path.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/certfleet/certfleet/internal/password"
	"github.com/certfleet/certfleet/internal/server"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/testutil"
)

const rootPassword = "console-root-1"

func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped under -short")
	}
	for _, name := range []string{"chromium", "chromium-headless-shell", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testutil.Missing(t, "chromium", "apt-get install chromium")
	return ""
}

// node is a running certfleet node for the browser.
type node struct {
	url      string
	st       store.Store
	localDir string
	dbURL    string
}

func startNode(t *testing.T, engine string) *node {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	n := &node{localDir: t.TempDir()}
	cfg := server.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), MasterKey: hex.EncodeToString(key),
		RootAccessKeyID: "LTAIconsole", RootSecret: "console-secret", ShutdownTimeout: 5 * time.Second}
	if engine == "postgres" {
		cfg.Database = testutil.PostgresURL(t)
	}
	cfg.Deploy.Local.Root = n.localDir
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	// The root's console password, as `certfleet account password root` sets it.
	st, _, err := server.Open(t.Context(), cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	root, err := st.AccountEnsure(t.Context(), "root")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if err := st.LoginProfileCreate(t.Context(), store.LoginProfile{AccountID: root, PasswordHash: password.Hash(rootPassword), Created: now, Updated: now}); err != nil {
		t.Fatal(err)
	}
	n.st = st
	t.Cleanup(func() { st.Close() })
	ready := make(chan string, 1)
	cfg.Ready = func(addr string) { ready <- addr }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, log) }()
	select {
	case addr := <-ready:
		n.url = "http://" + addr
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("server did not start within a minute")
	}
	t.Cleanup(func() { cancel(); <-done })
	return n
}

// ui is a browser tab on the node.
type ui struct {
	t    *testing.T
	ctx  context.Context
	base string
	dir  string // screenshots
}

func newUI(t *testing.T, exe, base string) *ui {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{chromedp.ExecPath(exe), chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true), chromedp.Flag("lang", "en-US")}
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("true")); err != nil { // starts the browser
		t.Fatalf("chromium: %v", err)
	}
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() { // confirm(): yes
		for _, err := range dialogs {
			if err != nil {
				return
			}
			chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	dir := os.Getenv("CERTFLEET_ARTIFACTS")
	if dir == "" {
		dir = t.TempDir()
	} else {
		dir = filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	u := &ui{t: t, ctx: ctx, base: base, dir: dir}
	u.run(chromedp.EmulateViewport(1280, 800))
	return u
}

func (u *ui) run(actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 2*time.Minute) // generous: CI machines are shared
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.shot("failure")
		u.t.Fatalf("browser: %v", err)
	}
}

// evalJS evaluates a JavaScript expression, awaiting a promise.
func evalJS[T any](u *ui, expr string) T {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 60*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		u.shot("failure")
		u.t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// until waits for a JavaScript condition.
func (u *ui) until(what, cond string) {
	u.t.Helper()
	testutil.WaitFor(u.t, 2*time.Minute, what, func() (bool, error) {
		return chromedp.Run(u.ctx, chromedp.Evaluate[bool]("!!("+cond+")"))
	})
}

func (u *ui) shot(name string) {
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		u.t.Logf("screenshot %s: %v", name, err)
		return
	}
	p := filepath.Join(u.dir, name+".png")
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		u.t.Fatal(err)
	}
	u.t.Logf("screenshot: %s", p)
}

// clickText clicks the first visible button or link of main whose text is text.
func (u *ui) clickText(text string) {
	u.t.Helper()
	u.until("a control named "+text, fmt.Sprintf(`[...document.querySelectorAll('button, a')].find(b => b.textContent.trim() === %q && b.offsetParent)`, text))
	evalJS[bool](u, fmt.Sprintf(`(() => { const b = [...document.querySelectorAll('button, a')].find(b => b.textContent.trim() === %q && b.offsetParent); b.click(); return true })()`, text))
}

func (u *ui) go_(hash string) {
	u.t.Helper()
	u.run(chromedp.Navigate(u.base + "/console/" + hash))
}

func (u *ui) signIn(name, pw string) {
	u.t.Helper()
	u.run(chromedp.Navigate(u.base+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=Name]`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=Name]`), name), chromedp.SendKeys(chromedp.CSS(`input[name=Password]`), pw), chromedp.Click(chromedp.CSS(`button[type=submit]`)))
}

// signOut signs out and waits for the sign-in form (the session is gone).
func (u *ui) signOut() {
	u.t.Helper()
	u.clickText("Sign out")
	u.run(chromedp.WaitVisible(chromedp.CSS(`input[name=Name]`)))
	if st := evalJS[float64](u, `fetch('/console/whoami').then(r => r.status)`); st != 401 {
		u.t.Fatalf("whoami after signing out: %v, want 401", st)
	}
}

func (u *ui) text(sel string) string {
	return evalJS[string](u, fmt.Sprintf("document.querySelector(%q).textContent", sel))
}

func testCert(t *testing.T, host string) (certPEM, keyPEM string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kd, _ := x509.MarshalPKCS8PrivateKey(key)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd}))
}

func TestBrowserFlows(t *testing.T) {
	exe := chromium(t)
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			n := startNode(t, engine)
			u := newUI(t, exe, n.url)

			// Sign in as root: GET / redirects a browser to the console.
			u.run(chromedp.Navigate(n.url+"/"), chromedp.WaitVisible(chromedp.CSS(`input[name=Name]`)))
			u.shot("00-signin")
			u.signIn("root", rootPassword)
			u.until("the overview", `document.querySelector('main h1')?.textContent === 'Overview' && document.querySelector('.card')`)
			var path string
			path = evalJS[string](u, `location.pathname`)
			if path != "/console/" {
				t.Fatalf("GET / landed on %s, want /console/", path)
			}
			u.shot("01-overview-root")

			// Upload a certificate (PEM pasted).
			certPEM, keyPEM := testCert(t, "www.example.test")
			u.go_("#/certificates")
			u.run(chromedp.WaitVisible(chromedp.CSS(`textarea[name=Cert]`)), chromedp.SendKeys(chromedp.CSS(`form.box input[name=Name]`), "www"),
				chromedp.SetValue(chromedp.CSS(`textarea[name=Cert]`), certPEM), chromedp.SetValue(chromedp.CSS(`textarea[name=Key]`), keyPEM))
			u.clickText("Upload")
			u.until("the uploaded certificate listed", `[...document.querySelectorAll('main table a')].some(a => a.textContent === 'www')`)
			u.shot("02-certificate-uploaded")
			u.clickText("www")
			u.until("the certificate's detail", `document.querySelector('dl.kv') && document.body.textContent.includes('www.example.test')`)
			u.shot("03-certificate-detail")

			// Create a resource from the form ListCloudProducts describes.
			u.go_("#/resources")
			u.run(chromedp.WaitVisible(chromedp.CSS(`select[name=Product]`)))
			var ok bool
			_ = ok
			ok = evalJS[bool](u, `(() => { const s = document.querySelector('select[name=Product]'); s.value = 'local/FILE'; s.dispatchEvent(new Event('change')); return true })()`)
			u.run(chromedp.WaitVisible(chromedp.CSS(`input[name="cfg.CertPath"]`)),
				chromedp.SendKeys(chromedp.CSS(`form.box input[name=Name]`), "web1"), chromedp.SendKeys(chromedp.CSS(`form.box input[name=Domain]`), "www.example.test"),
				chromedp.SendKeys(chromedp.CSS(`input[name="cfg.CertPath"]`), filepath.Join(n.localDir, "www.crt")),
				chromedp.SendKeys(chromedp.CSS(`input[name="cfg.KeyPath"]`), filepath.Join(n.localDir, "www.key")))
			u.shot("04-resource-form")
			u.clickText("Create")
			u.until("the resource listed", `[...document.querySelectorAll('main table td')].some(td => td.textContent === 'web1')`)

			// A contact, then the job wizard: certificate → resources → contact → start now.
			u.go_("#/contacts")
			u.run(chromedp.WaitVisible(chromedp.CSS(`form.box input[name=Name]`)), chromedp.SendKeys(chromedp.CSS(`form.box input[name=Name]`), "ops"),
				chromedp.SendKeys(chromedp.CSS(`form.box input[name=Email]`), "ops@example.test"))
			u.clickText("Create")
			u.until("the contact listed", `[...document.querySelectorAll('main table td')].some(td => td.textContent === 'ops')`)
			u.go_("#/jobs/new")
			u.run(chromedp.WaitVisible(chromedp.CSS(`fieldset input[type=checkbox]`)), chromedp.Click(chromedp.CSS(`fieldset input[type=checkbox]`)))
			u.clickText("Next")
			u.until("matching resources", `document.querySelectorAll('fieldset').length === 2`)
			ok = evalJS[bool](u, `document.querySelectorAll('fieldset')[1].querySelector('input').checked`)
			if !ok {
				t.Fatal("the resource covered by the certificate is not preselected")
			}
			ok = evalJS[bool](u, `(() => { document.querySelectorAll('form.box')[1].requestSubmit(); return true })()`)
			u.until("contacts", `document.querySelectorAll('fieldset').length === 3`)
			ok = evalJS[bool](u, `(() => { document.querySelectorAll('fieldset')[2].querySelector('input').click(); document.querySelectorAll('form.box')[2].requestSubmit(); return true })()`)
			u.run(chromedp.WaitVisible(chromedp.CSS(`select[name=When]`)))
			u.clickText("Create job")
			u.until("the preview", `/1 \/ 1 resource/.test(document.querySelector('#preview')?.textContent || '')`)
			u.shot("05-job-preview")
			u.clickText("Start now")
			u.until("the job's success", `document.querySelector('#jobstatus')?.textContent === 'success'`)
			u.until("the worker's success", `document.querySelector('.wstatus')?.textContent === 'success'`)
			u.shot("06-job-success")
			if b, err := os.ReadFile(filepath.Join(n.localDir, "www.crt")); err != nil || string(b) != certPEM {
				t.Fatalf("the job did not write the certificate: %v", err)
			}

			// Roll back the worker.
			u.clickText("Roll back")
			u.until("the rollback done", `/rollback: 1\/1/.test(document.querySelector('#jobcounts')?.textContent || '')`)
			u.shot("07-worker-rolled-back")
			if _, err := os.Stat(filepath.Join(n.localDir, "www.crt")); !os.IsNotExist(err) {
				t.Fatalf("after the rollback the file is still there (%v); it did not exist before the job", err)
			}

			// A RAM user, its console password and the read-only policy, from the console.
			u.go_("#/users")
			u.run(chromedp.WaitVisible(chromedp.CSS(`input[name=UserName]`)), chromedp.SendKeys(chromedp.CSS(`input[name=UserName]`), "reader"))
			u.clickText("Create")
			u.run(chromedp.WaitVisible(chromedp.CSS(`section.box input[name=Password]`)), chromedp.SendKeys(chromedp.CSS(`section.box input[name=Password]`), "reader-pass-1"))
			u.clickText("Set password")
			u.until("the login profile", `document.body.textContent.includes('reader@root')`)
			u.run(chromedp.WaitVisible(chromedp.CSS(`select[name=Policy]`)), chromedp.SetValue(chromedp.CSS(`select[name=Policy]`), "System:AliyunYundunCertReadOnlyAccess"))
			u.clickText("Attach")
			u.until("the policy attached", `[...document.querySelectorAll('section.box td')].some(td => td.textContent === 'AliyunYundunCertReadOnlyAccess')`)
			u.shot("08-users")

			// The audit log: the console's calls, and the chain verified.
			u.go_("#/audit")
			u.until("the chain's status", `/Chain intact/.test(document.querySelector('#chain')?.textContent || '')`)
			u.until("console calls in the log", `[...document.querySelectorAll('main td')].some(td => td.textContent === 'console')`)
			u.shot("09-audit")

			// Every control of every page has a label (keyboard and screen reader users).
			for _, hash := range []string{"#/overview", "#/certificates", "#/resources", "#/jobs", "#/jobs/new", "#/contacts", "#/credentials", "#/users", "#/audit", "#/account"} {
				u.go_(hash)
				u.until(hash+" loaded", `document.querySelector('main h1') && !/Loading/.test(document.querySelector('main').textContent)`)
				if bare := evalJS[[]string](u, `[...document.querySelectorAll('input, select, textarea, button')].filter(e => e.type !== 'hidden' && !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !(e.tagName === 'BUTTON' && e.textContent.trim())).map(e => e.outerHTML.slice(0, 80))`); len(bare) > 0 {
					t.Fatalf("%s: controls without a label: %v", hash, bare)
				}
			}

			// Page-load times with 10,000 resources (logged, not asserted),
			// against the same pages with 1 resource as the baseline.
			loads := func(resources int) {
				for _, p := range []struct{ hash, ready string }{
					{"#/resources", `document.querySelectorAll('main table tbody tr').length === ` + fmt.Sprint(min(resources, 20)) + ` && document.querySelector('.pager')?.textContent.includes('` + fmt.Sprint(resources) + ` in all')`},
					{"#/overview", `document.querySelector('.card .n') && document.querySelector('main table')`},
					{"#/certificates", `document.querySelector('main table tbody tr')`},
					{"#/jobs", `document.querySelector('main table tbody tr')`},
				} {
					// A full load (HTML, modules, whoami, the page's calls), from the
					// navigation's start to the page rendered, as the page's clock
					// (performance.now) tells; the median of 3.
					var ms []float64
					for range 3 {
						u.run(chromedp.Navigate("about:blank"))
						u.go_(p.hash)
						ms = append(ms, evalJS[float64](u, `new Promise(res => { const f = () => (`+p.ready+`) ? res(performance.now()) : requestAnimationFrame(f); f(); })`))
					}
					slices.Sort(ms)
					t.Logf("page-load engine=%-8s resources=%-5d page=%-14s median of 3: %4.0f ms (min %4.0f, max %4.0f)", engine, resources, p.hash, ms[1], ms[0], ms[2])
				}
			}
			loads(1)
			seedResources(t, n, engine, 10000)
			loads(10001)
			u.shot("10-resources-10000")
			// The console's calls behind those pages, median of 7 from the page
			// (fetch to answer), against a call of an empty list as the baseline.
			calls := []struct{ name, body string }{
				{"baseline: ListContact (empty)", "Action=ListContact&Version=2020-04-07"},
				{"ListCloudResources page 1", "Action=ListCloudResources&Version=2020-04-07&ShowSize=20"},
				{"ListCloudResources page 501 (last)", "Action=ListCloudResources&Version=2020-04-07&ShowSize=20&CurrentPage=501"},
				{"ListCloudResources Keyword=host09999", "Action=ListCloudResources&Version=2020-04-07&ShowSize=20&Keyword=host09999"},
				{"DescribeCloudResourceStatus", "Action=DescribeCloudResourceStatus&Version=2020-04-07"},
			}
			t.Logf("console calls with 10,001 resources (%s), median of 7:", engine)
			for _, c := range calls {
				ms := evalJS[float64](u, `(async () => {
					const me = await (await fetch('whoami')).json();
					const xs = [];
					for (let i = 0; i < 7; i++) {
						const t0 = performance.now();
						const r = await fetch('/console/api', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': me.CSRF}, body: `+"`"+c.body+"`"+`});
						if (!r.ok) throw new Error(await r.text());
						await r.json();
						xs.push(performance.now() - t0);
					}
					return xs.sort((a, b) => a - b)[3];
				})()`)
				t.Logf("  %-38s %6.1f ms", c.name, ms)
			}
			u.run(chromedp.EmulateViewport(390, 844))
			u.go_("#/overview")
			u.until("the overview", `document.querySelector('.card')`)
			u.shot("11-overview-phone")
			if wide := evalJS[string](u, `[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > innerWidth + 1).map(e => e.tagName + '.' + e.className).join(' ')`); wide != "" {
				t.Fatalf("at phone width (390 px) these overflow the screen: %s", wide)
			}
			u.run(chromedp.EmulateViewport(1280, 800))
			u.run(chromedp.SetValue(chromedp.CSS(`#lang`), "zh"))
			ok = evalJS[bool](u, `(() => { const s = document.querySelector('#lang'); s.dispatchEvent(new Event('change')); return true })()`)
			u.until("Chinese", `document.querySelector('main h1')?.textContent === '概览'`)
			u.shot("12-overview-zh")
			ok = evalJS[bool](u, `(() => { const s = document.querySelector('#lang'); s.value = 'en'; s.dispatchEvent(new Event('change')); return true })()`)

			// CSP: inline script is refused; the header says so.
			var csp string
			csp = evalJS[string](u, `fetch('/console/').then(r => r.headers.get('content-security-policy'))`)
			if !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe") {
				t.Fatalf("CSP %q", csp)
			}
			var blocked bool
			blocked = evalJS[bool](u, `(() => { const s = document.createElement('script'); s.textContent = 'window.__pwned = 1'; document.body.append(s); return window.__pwned === undefined })()`)
			if !blocked {
				t.Fatal("an inline script ran despite the CSP")
			}
			// CSRF: a write without the token is refused.
			var code string
			code = evalJS[string](u, `fetch('/console/api', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'Action=CreateContact&Version=2020-04-07&Name=x&Email=x@example.test'}).then(r => r.json()).then(j => j.Code)`)
			if code != "InvalidCSRFToken" {
				t.Fatalf("write without the CSRF token: %q", code)
			}

			// Sign in as the read-only RAM user: no write control, a forged write refused.
			u.signOut()
			u.signIn("reader@root", "reader-pass-1")
			u.until("the overview", `document.querySelector('main h1')?.textContent === 'Overview' && document.querySelector('.card')`)
			if me := u.text("#me"); me != "reader@root" {
				t.Fatalf("signed in as %q", me)
			}
			for _, hash := range []string{"#/certificates", "#/resources", "#/jobs", "#/contacts", "#/credentials"} {
				u.go_(hash)
				u.until(hash+" loaded", `document.querySelector('main table, main p.help')`)
				var writes []string
				writes = evalJS[[]string](u, `[...document.querySelectorAll('main form.box, main button, main a.button')].map(e => e.tagName + ':' + e.textContent.trim().slice(0, 30)).filter(s => !/^BUTTON:(Previous|Next|Search)$/.test(s))`)
				if len(writes) > 0 {
					t.Fatalf("%s shows write controls to a read-only user: %v", hash, writes)
				}
			}
			u.shot("13-read-only-user")
			code = evalJS[string](u, `fetch('whoami').then(r => r.json()).then(me => fetch('/console/api', {method: 'POST', headers: {'Content-Type': 'application/x-www-form-urlencoded', 'X-CSRF-Token': me.CSRF}, body: 'Action=DeleteCloudResource&Version=2020-04-07&Id=1'})).then(r => r.json()).then(j => j.Code)`)
			if code != "Forbidden.RAM" {
				t.Fatalf("forged write of a read-only user: %q, want Forbidden.RAM", code)
			}

			// Sign-in lockout.
			u.signOut()
			for range 5 {
				u.signIn("reader@root", "wrong-pass-1")
				u.until("the refusal", `document.querySelector('form .msg.error')`)
			}
			u.signIn("reader@root", "reader-pass-1")
			u.until("the lockout message", `document.querySelector('form .msg.error')?.textContent.includes('Too many failed sign-ins')`)
			u.shot("14-lockout")
		})
	}
}

// seedResources inserts count local resources in one transaction, past the
// API (as a large fleet would be after months of use).
func seedResources(t *testing.T, n *node, engine string, count int) {
	t.Helper()
	db := sqlOf(n.st)
	start := time.Now()
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	q := `INSERT INTO resources (account_id, cloud_name, cloud_product, domain, cloud_access_id, name, region_id, instance_id, listener_port, config, current_cert_id, created_ms, modified_ms)
		VALUES ((SELECT id FROM accounts WHERE name = 'root'), 'local', 'FILE', ?, 0, ?, '', '', '', '{}', 0, ?, ?)`
	if engine == "postgres" {
		q = strings.NewReplacer("?, 0, ?", "$1, 0, $2", "0, ?, ?)", "0, $3, $4)").Replace(q)
	}
	now := time.Now().UnixMilli()
	for i := range count {
		if _, err := tx.Exec(q, fmt.Sprintf("host%05d.example.test", i), fmt.Sprintf("fleet-%05d", i), now, now); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("seeded %d resources in %v", count, time.Since(start).Round(time.Millisecond))
}
