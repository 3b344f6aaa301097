package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/proc"
)

// binary is the certfleet command built once for these tests.
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if !testing.Short() { // under -short every test that needs it skips
		var err error
		if binary, err = proc.Binary(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	os.Exit(m.Run())
}

// node is a running `certfleet serve` and a home for CLI runs against it.
type node struct {
	t         *testing.T
	addr      string
	dataDir   string
	localRoot string
	home      string // HOME and the config file's directory for CLI runs
	mu        sync.Mutex
	logs      bytes.Buffer
}

func (n *node) Write(p []byte) (int, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.Write(p)
}

func (n *node) Logs() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// setup starts certfleet serve on a free loopback port, with generated root
// credentials and local FILE targets under a temporary --local-root.
func setup(t *testing.T) *node {
	t.Helper()
	return setupWith(t)
}

// setupWith is setup with extra serve flags; "{root}" in them stands for the
// node's --local-root.
func setupWith(t *testing.T, extra ...string) *node {
	t.Helper()
	if testing.Short() {
		t.Skip("runs certfleet serve; skipped under -short")
	}
	n := &node{t: t, dataDir: t.TempDir(), localRoot: t.TempDir(), home: t.TempDir()}
	args := []string{"--data-dir", n.dataDir, "--local-root", n.localRoot, "--retry-attempts", "1", "--retry-base", "100ms"}
	for _, a := range extra {
		args = append(args, strings.ReplaceAll(a, "{root}", n.localRoot))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, err := proc.Start(ctx, proc.Options{Binary: binary, Args: args, Env: cleanEnv(n.home), Output: n})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Stop(30 * time.Second)
		if t.Failed() {
			t.Logf("server logs:\n%s", n.Logs())
		}
	})
	n.addr = p.Addr()
	// The hint follows the ready line; configure checks it holds no secret.
	if err := p.WaitOutput(ctx, "to use the command line"); err != nil {
		t.Fatal(err)
	}
	return n
}

// cleanEnv is the environment without certfleet or Alibaba Cloud settings,
// with HOME and the config file in home.
func cleanEnv(home string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "CERTFLEET_") || strings.HasPrefix(kv, "ALIBABA_CLOUD_") || strings.HasPrefix(kv, "HOME=") || strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "HOME="+home, "CERTFLEET_CONFIG="+filepath.Join(home, "config.json"))
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs the CLI with extra environment variables env ("K=V").
func (n *node) run(env []string, stdin string, args ...string) result {
	n.t.Helper()
	if testing.Short() {
		n.t.Skip("runs the certfleet binary; skipped under -short")
	}
	cmd := exec.Command(binary, args...)
	cmd.Env = append(cleanEnv(n.home), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, strings.NewReader(stdin)
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		n.t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

// ok runs the CLI and fails the test unless it exits 0.
func (n *node) ok(args ...string) string {
	n.t.Helper()
	r := n.run(nil, "", args...)
	if r.code != 0 {
		n.t.Fatalf("certfleet %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// okJSON runs the CLI with -o json and decodes its output into v.
func (n *node) okJSON(v any, args ...string) {
	n.t.Helper()
	out := n.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		n.t.Fatalf("certfleet %s -o json: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// configure writes the default profile from the server's root credentials,
// read with `certfleet env`.
func (n *node) configure() {
	n.t.Helper()
	line := n.ok("env", "--data-dir", n.dataDir, "--endpoint", n.addr)
	vals := map[string]string{}
	for _, f := range strings.Fields(strings.TrimPrefix(strings.TrimSpace(line), "export ")) {
		k, v, _ := strings.Cut(f, "=")
		vals[k] = strings.Trim(v, "'")
	}
	if vals["CERTFLEET_ENDPOINT"] != "http://"+n.addr || vals["CERTFLEET_ACCESS_KEY_ID"] == "" || vals["CERTFLEET_ACCESS_KEY_SECRET"] == "" {
		n.t.Fatalf("certfleet env printed %q", line)
	}
	if strings.Contains(n.Logs(), vals["CERTFLEET_ACCESS_KEY_SECRET"]) {
		n.t.Fatal("the server printed the root secret")
	}
	n.ok("configure", "--endpoint", n.addr, "--access-key-id", vals["CERTFLEET_ACCESS_KEY_ID"],
		"--access-key-secret", vals["CERTFLEET_ACCESS_KEY_SECRET"])
	st, err := os.Stat(filepath.Join(n.home, "config.json"))
	if err != nil {
		n.t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		n.t.Errorf("config file mode %v, want 0600", st.Mode().Perm())
	}
}

// upload writes a fresh chain for domain to files and uploads it.
func (n *node) upload(name, domain string) (int64, certstest.Chain) {
	n.t.Helper()
	ch := certstest.New(n.t, certstest.Options{DNSNames: []string{domain}})
	dir := n.t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, []byte(ch.CertPEM), 0o600)
	os.WriteFile(keyFile, []byte(ch.KeyPEM), 0o600)
	var r struct{ CertId int64 }
	n.okJSON(&r, "cert", "upload", "--name", name, "--cert", certFile, "--key", keyFile)
	return r.CertId, ch
}

func (n *node) fileResource(domain, dir string) int64 {
	n.t.Helper()
	var r struct{ Id int64 }
	n.okJSON(&r, "resource", "add", "file", "--domain", domain,
		"--cert-path", filepath.Join(dir, domain+".pem"), "--key-path", filepath.Join(dir, domain+".key"))
	return r.Id
}

func (n *node) contact() int64 {
	n.t.Helper()
	var r struct{ ContactId int64 }
	n.okJSON(&r, "contact", "add", "--name", "ops", "--email", "ops@example.test", "--webhook", "https://hooks.example.test/a")
	return r.ContactId
}

func (n *node) startJob(name string, cert, resource, contact int64) int64 {
	n.t.Helper()
	var r struct{ JobId int64 }
	n.okJSON(&r, "job", "create", "--name", name, "--cert", fmt.Sprint(cert), "--resource", fmt.Sprint(resource),
		"--contact", fmt.Sprint(contact), "--start")
	return r.JobId
}

func TestCLIFlow(t *testing.T) {
	n := setup(t)
	n.configure()

	certID, ch := n.upload("www", "www.example.test")
	resID := n.fileResource("www.example.test", n.localRoot)
	contactID := n.contact()
	jobID := n.startJob("first", certID, resID, contactID)

	// Piped: plain lines, no terminal control sequences, exit 0.
	r := n.run(nil, "", "job", "watch", fmt.Sprint(jobID))
	if r.code != 0 {
		t.Fatalf("job watch: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if strings.ContainsAny(r.stdout, "\r\x1b") || !strings.Contains(r.stdout, fmt.Sprintf("job %d success: 1/1 done", jobID)) ||
		!strings.Contains(r.stdout, "FILE 1/1") || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("job watch output:\n%q", r.stdout)
	}
	certPath := filepath.Join(n.localRoot, "www.example.test.pem")
	if got, err := os.ReadFile(certPath); err != nil || string(got) != ch.CertPEM {
		t.Fatalf("%s holds %q (%v), want the uploaded chain", certPath, got, err)
	}

	// Every list parses as JSON and shows what was made.
	var certs []struct{ CertId int64 }
	n.okJSON(&certs, "cert", "list")
	var resources []struct{ Id, CertId int64 }
	n.okJSON(&resources, "resource", "list")
	var contacts []struct{ ContactId int64 }
	n.okJSON(&contacts, "contact", "list")
	var jobs []struct {
		Id     int64
		Status string
	}
	n.okJSON(&jobs, "job", "list")
	var access []map[string]any
	n.okJSON(&access, "access", "list")
	if len(certs) != 1 || certs[0].CertId != certID || len(resources) != 1 || resources[0].CertId != certID ||
		len(contacts) != 1 || len(jobs) != 1 || jobs[0].Status != "success" || len(access) != 0 {
		t.Errorf("lists: certs %v, resources %v, contacts %v, jobs %v, access %v", certs, resources, contacts, jobs, access)
	}
	if out := n.ok("resource", "list"); !strings.Contains(out, "CERT EXPIRES") || !strings.Contains(out, fmt.Sprintf("%d www", certID)) {
		t.Errorf("resource list:\n%s", out)
	}
	show := n.ok("cert", "show", fmt.Sprint(certID))
	if !strings.Contains(show, "www.example.test") || !strings.Contains(show, "SHA-256:") || strings.Contains(show, "PRIVATE KEY") {
		t.Errorf("cert show:\n%s", show)
	}
	if show := n.ok("cert", "show", fmt.Sprint(certID), "--with-key"); !strings.Contains(show, "PRIVATE KEY") {
		t.Errorf("cert show --with-key has no key:\n%s", show)
	}

	// Roll the worker back: the file did not exist before, so it goes away.
	var js struct {
		Workers []struct {
			Id     int64
			Status string
		}
	}
	n.okJSON(&js, "job", "show", fmt.Sprint(jobID))
	if len(js.Workers) != 1 || js.Workers[0].Status != "success" {
		t.Fatalf("job show workers: %+v", js.Workers)
	}
	n.ok("job", "rollback", fmt.Sprint(jobID), fmt.Sprint(js.Workers[0].Id))
	testutil.WaitFor(t, 20*time.Second, certPath+" removed by the rollback", func() (bool, error) {
		_, err := os.Stat(certPath)
		return errors.Is(err, os.ErrNotExist), nil
	})

	// A job whose target directory does not exist fails: watch exits 3 and names the error.
	badID := n.fileResource("www.example.test", filepath.Join(n.localRoot, "missing"))
	badJob := n.startJob("bad", certID, badID, contactID)
	r = n.run(nil, "", "job", "watch", fmt.Sprint(badJob))
	if r.code != exitJobError || !strings.Contains(r.stdout, "Failed workers") || !strings.Contains(r.stdout, "does not exist") {
		t.Errorf("watch of a failing job: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}

	// Errors: one line, the API code and the request ID; usage errors exit 2.
	r = n.run(nil, "", "cert", "show", "999999")
	if r.code != 1 || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 || !strings.Contains(r.stderr, "NotFound") ||
		!strings.Contains(r.stderr, "(request ") || strings.Contains(r.stderr, "code: 404") {
		t.Errorf("unknown cert: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, args := range [][]string{{"job", "show", "abc"}, {"cert", "upload"}, {"job", "bogus"}, {"cert", "list", "--nope"}, {"cert", "list", "-o", "yaml"}} {
		if r := n.run(nil, "", args...); r.code != exitUsage {
			t.Errorf("certfleet %v: exit %d, want 2 (%s)", args, r.code, r.stderr)
		}
	}

	// Precedence: flags > environment > profile.
	bad := []string{"CERTFLEET_ENDPOINT=127.0.0.1:1"}
	if r := n.run(bad, "", "cert", "list"); r.code != 1 || !strings.Contains(r.stderr, "127.0.0.1:1") {
		t.Errorf("environment endpoint not used over the profile: exit %d %s", r.code, r.stderr)
	}
	if r := n.run(bad, "", "cert", "list", "--endpoint", n.addr); r.code != 0 {
		t.Errorf("flag endpoint not used over the environment: exit %d %s", r.code, r.stderr)
	}
	if r := n.run([]string{"ALIBABA_CLOUD_ACCESS_KEY_SECRET=wrong"}, "", "cert", "list"); r.code != 1 || !strings.Contains(r.stderr, "SignatureDoesNotMatch") {
		t.Errorf("environment secret not used over the profile: exit %d %s", r.code, r.stderr)
	}
	if r := n.run(nil, "", "cert", "list", "--profile", "nope"); r.code != 1 || !strings.Contains(r.stderr, "configure --profile nope") {
		t.Errorf("unknown profile: exit %d %s", r.code, r.stderr)
	}
}

// TestCLIWatchTerminal runs `job watch` on a pseudo-terminal (tmux) and
// checks that the progress bar and per-product summary are drawn.
func TestCLIWatchTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		testutil.Missing(t, "tmux", "apt-get install tmux")
	}
	n := setup(t)
	n.configure()
	certID, _ := n.upload("tty", "tty.example.test")
	resID := n.fileResource("tty.example.test", n.localRoot)
	jobID := n.startJob("tty", certID, resID, n.contact())

	sock := fmt.Sprintf("certfleet-test-%d", os.Getpid())
	// The script tells the test it is done through a tmux channel.
	script := fmt.Sprintf("CERTFLEET_CONFIG=%s %s job watch %d; echo EXIT=$?; %s -L %s wait-for -S done; sleep 60",
		shellQuote(filepath.Join(n.home, "config.json")), shellQuote(binary), jobID, shellQuote(tmux), sock)
	start := exec.Command(tmux, "-L", sock, "-f", "/dev/null", "new-session", "-d", "-x", "120", "-y", "30", script)
	start.Env = cleanEnv(n.home)
	if out, err := start.CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command(tmux, "-L", sock, "kill-server").Run() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, tmux, "-L", sock, "wait-for", "done").CombinedOutput(); err != nil {
		t.Fatalf("job watch did not finish in tmux: %v %s", err, out)
	}
	// tmux may not have drawn the script's last output yet when the signal
	// arrives: look until it has.
	var screen string
	testutil.WaitFor(t, 10*time.Second, "EXIT= on the tmux screen", func() (bool, error) {
		out, err := exec.Command(tmux, "-L", sock, "capture-pane", "-p").Output()
		screen = string(out)
		return strings.Contains(screen, "EXIT="), err
	})
	for _, want := range []string{fmt.Sprintf("job %d success", jobID), "[========================] 1/1 done", "FILE", "EXIT=0", "succeeded"} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if strings.Contains(screen, "processing") && strings.Count(screen, fmt.Sprintf("job %d ", jobID)) > 1 {
		t.Errorf("progress was not redrawn in place:\n%s", screen)
	}
}
