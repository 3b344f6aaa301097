package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/server"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/hosts"
)

// offline is a node value for CLI runs that need no server.
func offline(t *testing.T) *node { return &node{t: t, home: t.TempDir()} }

// oneLineErr checks a failed run: the exit code, one line on stderr, no raw
// Go error text, and each of want in it.
func oneLineErr(t *testing.T, desc string, r result, code int, want ...string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit %d, want %d (%s)", desc, r.code, code, r.stderr)
	}
	msg := strings.TrimRight(r.stderr, "\n")
	if code == exitUsage { // a usage error adds the "Run '… --help'" line
		msg, _, _ = strings.Cut(msg, "\nRun '")
	}
	if strings.Count(msg, "\n") != 0 {
		t.Errorf("%s: stderr is not one line: %q", desc, r.stderr)
	}
	for _, raw := range []string{`Post "`, "dial tcp", "x509: certificate signed"} {
		if strings.Contains(r.stderr, raw) {
			t.Errorf("%s: raw Go error text %q in %q", desc, raw, r.stderr)
		}
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("%s: stderr %q lacks %q", desc, r.stderr, w)
		}
	}
}

// closedPort is a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCLIClientErrors(t *testing.T) {
	t.Parallel()
	n := setup(t)
	n.configure()
	dead := closedPort(t)

	// Unreachable endpoint: where the endpoint came from is named.
	oneLineErr(t, "closed port from env", n.run([]string{"CERTFLEET_ENDPOINT=" + dead}, "", "cert", "list"), exitFailure,
		"cannot reach certfleet at http://"+dead+" (from CERTFLEET_ENDPOINT)", "is `certfleet serve` running?")
	oneLineErr(t, "closed port from flag", n.run(nil, "", "cert", "list", "--endpoint", dead), exitFailure, "(from --endpoint)")
	n.ok("configure", "--profile", "dead", "--endpoint", dead, "--access-key-id", "LTAIdead", "--access-key-secret", "dead")
	oneLineErr(t, "closed port from profile", n.run(nil, "", "cert", "list", "--profile", "dead"), exitFailure,
		`(from profile "dead" in `+filepath.Join(n.home, "config.json")+")")

	// Wrong secret: says the secret does not match the key, and where it came from.
	oneLineErr(t, "wrong secret", n.run([]string{"CERTFLEET_ACCESS_KEY_SECRET=wrong"}, "", "cert", "list"), exitFailure,
		"SignatureDoesNotMatch", "does not match AccessKeyId", "(from CERTFLEET_ACCESS_KEY_SECRET)", "request ")
	// certfleet's own variables come before the Alibaba Cloud ones.
	own := shellWords(t, strings.TrimPrefix(strings.TrimSpace(n.ok("env", "--data-dir", n.dataDir, "--endpoint", n.addr)), "export "))
	if r := n.run(append(own, "ALIBABA_CLOUD_ACCESS_KEY_ID=LTAIwrong", "ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong"), "", "cert", "list"); r.code != 0 {
		t.Errorf("ALIBABA_CLOUD_ACCESS_KEY_* read before CERTFLEET_ACCESS_KEY_*: exit %d %s", r.code, r.stderr)
	}

	// A TLS front with a private CA (httptest's) before the node.
	backend, _ := url.Parse("http://" + n.addr)
	ts := httptest.NewTLSServer(httputil.NewSingleHostReverseProxy(backend))
	defer ts.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}), 0o600)
	oneLineErr(t, "private CA", n.run(nil, "", "cert", "list", "--endpoint", ts.URL), exitFailure,
		"cannot trust certfleet at "+ts.URL+" (from --endpoint)", "unknown authority", "--ca-file", "CERTFLEET_CA_FILE")
	if r := n.run(nil, "", "cert", "list", "--endpoint", ts.URL, "--ca-file", ca); r.code != 0 {
		t.Errorf("--ca-file: exit %d %s", r.code, r.stderr)
	}
	if r := n.run([]string{"CERTFLEET_CA_FILE=" + ca, "CERTFLEET_ENDPOINT=" + ts.URL}, "", "cert", "list"); r.code != 0 {
		t.Errorf("CERTFLEET_CA_FILE: exit %d %s", r.code, r.stderr)
	}
	// The profile's CAFile, written by configure --ca-file.
	id := strings.Trim(strings.SplitN(strings.SplitN(n.ok("env", "--data-dir", n.dataDir), "CERTFLEET_ACCESS_KEY_ID=", 2)[1], " ", 2)[0], "'")
	sec := strings.Trim(strings.TrimSpace(strings.SplitN(n.ok("env", "--data-dir", n.dataDir), "CERTFLEET_ACCESS_KEY_SECRET=", 2)[1]), "'")
	n.ok("configure", "--profile", "tls", "--endpoint", ts.URL, "--access-key-id", id, "--access-key-secret", sec, "--ca-file", ca)
	if r := n.run(nil, "", "cert", "list", "--profile", "tls"); r.code != 0 {
		t.Errorf("profile CAFile: exit %d %s", r.code, r.stderr)
	}
	os.WriteFile(ca, []byte("not a certificate"), 0o600)
	oneLineErr(t, "bad CA file", n.run(nil, "", "cert", "list", "--profile", "tls"), exitFailure, `(from profile "tls" in `, "holds no PEM certificate")
	// http:// to a TLS port, and https:// to a plain one.
	oneLineErr(t, "https to http", n.run(nil, "", "cert", "list", "--endpoint", "https://"+n.addr), exitFailure, "cannot reach certfleet at https://"+n.addr)
}

// TestCLIClockSkew runs a node whose clock is 20 minutes ahead (in process,
// with the API's injectable clock) and checks the CLI says by how much this
// machine's clock is off.
func TestCLIClockSkew(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	var cfg server.Config
	cfg.Addr, cfg.DataDir = "127.0.0.1:0", t.TempDir()
	cfg.RootAccessKeyID, cfg.RootSecret = "LTAIskewtest0001", "skew-secret-skew-secret-0001"
	cfg.API.Clock = func() time.Time { return time.Now().Add(20 * time.Minute) }
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Ready = func(addr string) { ready <- addr }
	go func() { done <- server.Run(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	t.Cleanup(func() { cancel(); <-done })
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("server: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("server not ready after a minute")
	}
	n := offline(t)
	r := n.run([]string{"CERTFLEET_ENDPOINT=" + addr, "CERTFLEET_ACCESS_KEY_ID=" + cfg.RootAccessKeyID, "CERTFLEET_ACCESS_KEY_SECRET=" + cfg.RootSecret}, "", "cert", "list")
	// Both times are whole seconds: the skew shows as 20m0s or 20m1s.
	oneLineErr(t, "clock skew", r, exitFailure, "InvalidTimeStamp.Expired", "clock is 20m", "s behind the server's", "set it right")
}

func TestCLIVersionCompletionMan(t *testing.T) {
	t.Parallel()
	n := offline(t)
	v := n.ok("--version")
	if !strings.HasPrefix(v, "certfleet ") || !strings.Contains(v, "go1.") || strings.Count(v, "\n") != 1 {
		t.Errorf("--version: %q", v)
	}
	if v2 := n.ok("version"); v2 != v {
		t.Errorf("version %q != --version %q", v2, v)
	}
	var bi buildInfo
	if err := json.Unmarshal([]byte(n.ok("version", "-o", "json")), &bi); err != nil || bi.GoVersion == "" || bi.Version == "" {
		t.Errorf("version -o json: %+v %v", bi, err)
	}

	// -ldflags -X stamps version, commit and date.
	stamped := filepath.Join(t.TempDir(), "certfleet")
	build := exec.Command("go", "build", "-o", stamped, "-ldflags", "-X main.version=v9.8.7 -X main.commit=abc1234 -X main.date=2026-01-02T03:04:05Z", ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.Command(stamped, "--version").Output()
	if err != nil || !strings.Contains(string(out), "certfleet v9.8.7 (commit abc1234, built 2026-01-02T03:04:05Z, go") {
		t.Errorf("stamped --version: %q %v", out, err)
	}

	for shell, want := range map[string]string{"bash": "bash completion", "zsh": "#compdef certfleet", "fish": "complete -c certfleet", "powershell": "Register-ArgumentCompleter"} {
		if got := n.ok("completion", shell); !strings.Contains(got, want) {
			t.Errorf("completion %s lacks %q", shell, want)
		}
	}

	dir := filepath.Join(t.TempDir(), "man1")
	n.ok("man", "--dir", dir)
	for _, page := range []string{"certfleet.1", "certfleet-resource-show.1", "certfleet-ssh-keyscan.1", "certfleet-job-watch.1"} {
		b, err := os.ReadFile(filepath.Join(dir, page))
		if err != nil || !strings.Contains(string(b), ".TH ") {
			t.Errorf("man page %s: %v %.80q", page, err, b)
		}
	}
}

// TestCLIInterrupt sends SIGINT to "job watch" and wants exit 130.
func TestCLIInterrupt(t *testing.T) {
	t.Parallel()
	n := setup(t)
	n.configure()
	certID, _ := n.upload("int", "int.example.test")
	resID := n.fileResource("int.example.test", n.localRoot)
	var r struct{ JobId int64 }
	// A job scheduled for tomorrow: watch waits until interrupted.
	n.okJSON(&r, "job", "create", "--name", "int", "--cert", fmt.Sprint(certID), "--resource", fmt.Sprint(resID), "--contact", fmt.Sprint(n.contact()),
		"--start", "--at", time.Now().Add(24*time.Hour).Format(time.RFC3339))
	cmd := exec.Command(binary, "job", "watch", fmt.Sprint(r.JobId))
	cmd.Env = cleanEnv(n.home)
	stdout, _ := cmd.StdoutPipe()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once it has drawn its first line it is watching.
	buf := make([]byte, 1)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatalf("job watch printed nothing: %v %s", err, stderr.String())
	}
	cmd.Process.Signal(os.Interrupt)
	go io.Copy(io.Discard, stdout)
	cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != exitInterrupted {
		t.Errorf("job watch after SIGINT: exit %d, want 130 (%s)", code, stderr.String())
	}
	if strings.Count(strings.TrimSpace(stderr.String()), "\n") != 0 || !strings.Contains(stderr.String(), "certfleet job watch") {
		t.Errorf("job watch after SIGINT: stderr %q", stderr.String())
	}
}

func TestCLIEnvNames(t *testing.T) {
	t.Parallel()
	n := setup(t)
	own := n.ok("env", "--data-dir", n.dataDir, "--endpoint", n.addr)
	if !strings.Contains(own, "CERTFLEET_ACCESS_KEY_ID=") || !strings.Contains(own, "CERTFLEET_ACCESS_KEY_SECRET=") || strings.Contains(own, "ALIBABA_CLOUD") {
		t.Errorf("certfleet env: %q", own)
	}
	ali := n.ok("env", "--data-dir", n.dataDir, "--endpoint", n.addr, "--alibaba-names")
	if !strings.Contains(ali, "ALIBABA_CLOUD_ACCESS_KEY_ID=") || strings.Contains(ali, "CERTFLEET_ACCESS_KEY") {
		t.Errorf("certfleet env --alibaba-names: %q", ali)
	}
	// Either set works for the client.
	for _, line := range []string{own, ali} {
		var env []string
		for _, f := range shellWords(t, strings.TrimPrefix(strings.TrimSpace(line), "export ")) {
			env = append(env, f)
		}
		if r := n.run(env, "", "cert", "list"); r.code != 0 {
			t.Errorf("with %q: exit %d %s", line, r.code, r.stderr)
		}
	}
}

// serveTLSFiles serves certPath/keyPath on a loopback TLS port until the test ends.
func serveTLSFiles(t *testing.T, certPath, keyPath string) string {
	t.Helper()
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(http.NotFoundHandler())
	ts.TLS = &tls.Config{Certificates: []tls.Certificate{pair}}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	return ts.Listener.Addr().String()
}

func TestCLIResources(t *testing.T) {
	t.Parallel()
	n := setup(t)
	n.configure()
	certID, _ := n.upload("www", "www.example.test")
	var dup1, dup2 struct{ Id int64 }
	n.okJSON(&dup1, "resource", "add", "file", "--domain", "dup.example.test", "--name", "dup", "--cert-path", filepath.Join(n.localRoot, "d1.pem"), "--key-path", filepath.Join(n.localRoot, "d1.key"))
	n.okJSON(&dup2, "resource", "add", "file", "--domain", "dup.example.test", "--name", "dup", "--cert-path", filepath.Join(n.localRoot, "d2.pem"), "--key-path", filepath.Join(n.localRoot, "d2.key"))
	var res struct{ Id int64 }
	n.okJSON(&res, "resource", "add", "file", "--domain", "www.example.test", "--name", "web1",
		"--cert-path", filepath.Join(n.localRoot, "web1.pem"), "--key-path", filepath.Join(n.localRoot, "web1.key"))
	var ct struct {
		ContactId int64
		Warnings  []string
	}
	n.okJSON(&ct, "contact", "add", "--name", "ops", "--webhook", "https://hooks.example.test/a")
	if len(ct.Warnings) != 0 {
		t.Errorf("a webhook contact drew warnings: %v", ct.Warnings)
	}

	// Names wherever an ID is; ambiguous and unknown names are refused.
	var job struct{ JobId int64 }
	n.okJSON(&job, "job", "create", "--name", "j", "--cert", "www", "--resource", "web1", "--contact", "ops", "--start")
	if r := n.run(nil, "", "job", "watch", fmt.Sprint(job.JobId)); r.code != 0 {
		t.Fatalf("job watch: exit %d %s%s", r.code, r.stdout, r.stderr)
	}
	oneLineErr(t, "ambiguous name", n.run(nil, "", "resource", "show", "dup"), exitFailure, fmt.Sprintf(`2 resources are named "dup" (IDs %d, %d)`, dup1.Id, dup2.Id))
	n.ok("resource", "delete", fmt.Sprint(dup1.Id))
	n.ok("resource", "delete", "dup")
	oneLineErr(t, "unknown name", n.run(nil, "", "resource", "show", "nope"), exitFailure, `no resource is named "nope"`)
	if out := n.ok("cert", "show", "www"); !strings.Contains(out, fmt.Sprintf("ID:          %d", certID)) {
		t.Errorf("cert show www:\n%s", out)
	}

	// show: terminal-free text and JSON with Config, the certificate, observed fields.
	show := n.ok("resource", "show", "web1")
	for _, w := range []string{fmt.Sprintf("ID:           %d", res.Id), "Name:         web1", "local/FILE", fmt.Sprintf("%d www", certID), `"CertPath"`, "Stale:        -"} {
		if !strings.Contains(show, w) {
			t.Errorf("resource show lacks %q:\n%s", w, show)
		}
	}
	var shown resourceItem
	n.okJSON(&shown, "resource", "show", fmt.Sprint(res.Id))
	if shown.Id != res.Id || shown.CertId != certID || !strings.Contains(string(shown.Config), "web1.pem") {
		t.Errorf("resource show -o json: %+v", shown)
	}

	// update: a generated --<key> flag keeps the other keys; --name renames.
	servedAddr := serveTLSFiles(t, filepath.Join(n.localRoot, "web1.pem"), filepath.Join(n.localRoot, "web1.key"))
	n.ok("resource", "update", "web1", "--verify-address", servedAddr, "--name", "web-one")
	n.okJSON(&shown, "resource", "show", "web-one")
	var cfg map[string]any
	json.Unmarshal(shown.Config, &cfg)
	if cfg["CertPath"] != filepath.Join(n.localRoot, "web1.pem") || fmt.Sprint(cfg["VerifyAddress"]) != "["+servedAddr+"]" {
		t.Errorf("after update, Config %v", cfg)
	}
	oneLineErr(t, "foreign key", n.run(nil, "", "resource", "update", "web-one", "--host-key", "x"), exitUsage, "local/FILE has no Config key HostKey")
	oneLineErr(t, "nothing to change", n.run(nil, "", "resource", "update", "web-one"), exitUsage, "nothing to change")

	// check: serves what was deployed.
	if out := n.ok("resource", "check", "web-one"); !strings.Contains(out, fmt.Sprintf("serves certificate %d, as deployed", certID)) || !strings.Contains(out, servedAddr) {
		t.Errorf("resource check:\n%s", out)
	}
	// Pointed at another certificate: stale, in check, list and list -o json.
	other := httptest.NewTLSServer(http.NotFoundHandler())
	defer other.Close()
	n.ok("resource", "update", "web-one", "--verify-address", other.Listener.Addr().String())
	var chk struct {
		Stale        bool
		ObservedSha2 string
	}
	n.okJSON(&chk, "resource", "check", "web-one")
	if !chk.Stale || chk.ObservedSha2 == "" {
		t.Errorf("resource check -o json: %+v", chk)
	}
	if out := n.ok("resource", "list"); !strings.Contains(out, "STALE") || !strings.Contains(out, "OBSERVED") || strings.ContainsAny(out, "\x1b") {
		t.Errorf("resource list:\n%s", out)
	}
	var list []resourceItem
	n.okJSON(&list, "resource", "list")
	if len(list) != 1 || !list[0].Stale || list[0].ObservedSha2 == "" || len(list[0].Config) == 0 {
		t.Errorf("resource list -o json: %+v", list)
	}

	// JSON names: a certificate's ID is CertId in list, show and upload.
	var certs []map[string]any
	n.okJSON(&certs, "cert", "list")
	var one map[string]any
	n.okJSON(&one, "cert", "show", "www")
	if _, ok := certs[0]["CertId"]; !ok || certs[0]["CertificateId"] != nil || one["CertId"] == nil || one["Id"] != nil {
		t.Errorf("cert JSON names: list %v, show %v", certs[0], one)
	}

	// delete by name.
	n.ok("resource", "delete", "web-one")
}

func TestCLIContactWarning(t *testing.T) {
	t.Parallel()
	n := setup(t)
	n.configure()
	r := n.run(nil, "", "contact", "add", "--name", "mail-only", "--email", "ops@example.test")
	if r.code != 0 || !strings.Contains(r.stderr, "warning: contact") || !strings.Contains(r.stderr, "--smtp-addr") {
		t.Errorf("contact add without SMTP: exit %d stderr %q", r.code, r.stderr)
	}
	certID, _ := n.upload("w", "w.example.test")
	resID := n.fileResource("w.example.test", n.localRoot)
	var job struct{ JobId int64 }
	n.okJSON(&job, "job", "create", "--name", "j", "--cert", fmt.Sprint(certID), "--resource", fmt.Sprint(resID), "--contact", "mail-only")
	r = n.run(nil, "", "job", "show", fmt.Sprint(job.JobId))
	if r.code != 0 || !strings.Contains(r.stderr, "warning: contact") {
		t.Errorf("job show: exit %d stderr %q", r.code, r.stderr)
	}
	var shown struct{ Warnings []string }
	n.okJSON(&shown, "job", "show", fmt.Sprint(job.JobId))
	if len(shown.Warnings) != 1 {
		t.Errorf("job show -o json Warnings: %v", shown.Warnings)
	}
}

func TestCLISSHKeyscanAndPassword(t *testing.T) {
	t.Parallel()
	sshd := hosts.StartSSHD(t, false)
	n := setup(t)
	n.configure()
	out := n.ok("ssh-keyscan", sshd.Addr)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if f := strings.Fields(sshd.HostKey); len(lines) != 2 || lines[0] != f[0]+" "+f[1] || !strings.Contains(lines[1], sshd.HostFP) {
		t.Errorf("ssh-keyscan printed %q, want %q and %q", out, sshd.HostKey, sshd.HostFP)
	}
	var k struct{ HostKey, Fingerprint string }
	n.okJSON(&k, "ssh-keyscan", sshd.Addr)
	if k.Fingerprint != sshd.HostFP {
		t.Errorf("ssh-keyscan -o json: %+v", k)
	}
	oneLineErr(t, "keyscan closed port", n.run(nil, "", "ssh-keyscan", closedPort(t)), exitFailure, "cannot reach")

	var a struct{ AccessId int64 }
	r := n.run(nil, "hunter2\n", "access", "add-ssh", "--name", "pw", "--user", "deploy", "--password-stdin", "-o", "json")
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &a) != nil || a.AccessId == 0 {
		t.Fatalf("add-ssh --password-stdin: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	oneLineErr(t, "empty password", n.run(nil, "", "access", "add-ssh", "--name", "pw2", "--user", "deploy", "--password-stdin"), exitUsage, "no password")
	// SSH hosts cannot be listed: sync says so, by the credential's name.
	oneLineErr(t, "sync of an ssh credential", n.run(nil, "", "resource", "sync", "pw"), exitFailure, "no product of this cloud can list its resources: ssh")
	// The credential is usable by name.
	var res struct{ Id int64 }
	n.okJSON(&res, "resource", "add", "ssh", "NGINX", "--domain", "s.example.test", "--access", "pw", "--host", "127.0.0.1", "--port", fmt.Sprint(sshd.Port),
		"--host-key", sshd.HostKey, "--cert-path", "/tmp/s.pem", "--key-path", "/tmp/s.key")
	if res.Id == 0 {
		t.Error("resource add with --access NAME")
	}
}

// TestCLITerminal runs, on a pseudo-terminal (tmux), Ctrl-C in "job watch"
// (exit 130) and "access add-ssh --password-stdin" (prompted, not echoed).
func TestCLITerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		testutil.Missing(t, "tmux", "apt-get install tmux")
	}
	t.Parallel()
	n := setup(t)
	n.configure()
	certID, _ := n.upload("tty", "tty.example.test")
	resID := n.fileResource("tty.example.test", n.localRoot)
	var job struct{ JobId int64 }
	n.okJSON(&job, "job", "create", "--name", "tty", "--cert", fmt.Sprint(certID), "--resource", fmt.Sprint(resID), "--contact", fmt.Sprint(n.contact()),
		"--start", "--at", time.Now().Add(24*time.Hour).Format(time.RFC3339))

	sock := fmt.Sprintf("certfleet-term-%d", os.Getpid())
	cf := "CERTFLEET_CONFIG=" + shellQuote(filepath.Join(n.home, "config.json")) + " " + shellQuote(binary)
	script := fmt.Sprintf("%s job watch %d; echo WATCH=$?; %s access add-ssh --name tty --user u --password-stdin; echo ADD=$?; %s -L %s wait-for -S done; sleep 60",
		cf, job.JobId, cf, shellQuote(tmux), sock)
	start := exec.Command(tmux, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30", script)
	start.Env = cleanEnv(n.home)
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	screen := func() string {
		out, _ := exec.Command(tmux, "-L", sock, "capture-pane", "-p").Output()
		return string(out)
	}
	waitScreen := func(want string) {
		t.Helper()
		testutil.WaitFor(t, 20*time.Second, want+" on the tmux screen", func() (bool, error) { return strings.Contains(screen(), want), nil })
	}
	waitScreen(fmt.Sprintf("job %d", job.JobId))
	exec.Command(tmux, "-L", sock, "send-keys", "C-c").Run()
	waitScreen("SSH password:")
	exec.Command(tmux, "-L", sock, "send-keys", "s3cret-pw", "Enter").Run()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, tmux, "-L", sock, "wait-for", "done").CombinedOutput(); err != nil {
		t.Fatalf("the script did not finish in tmux: %v %s\n%s", err, out, screen())
	}
	waitScreen("ADD=")
	s := screen()
	for _, want := range []string{"WATCH=130", "Created access", "ADD=0"} {
		if !strings.Contains(s, want) {
			t.Errorf("screen lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "s3cret-pw") {
		t.Errorf("the password was echoed:\n%s", s)
	}
}
