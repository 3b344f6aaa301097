// Package e2e drives real `certfleet serve` processes with the official
// Alibaba Cloud SDK, on SQLite and on PostgreSQL.
package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/testutil"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "certfleet-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "certfleet")
	build := exec.Command("go", "build", "-o", binary, "github.com/certfleet/certfleet/cmd/certfleet")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build certfleet:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Engines the tests run on.
var engines = []string{"sqlite", "postgres"}

// forEachEngine runs fn as a subtest per storage engine.
func forEachEngine(t *testing.T, fn func(t *testing.T, engine string)) {
	for _, e := range engines {
		t.Run(e, func(t *testing.T) { fn(t, e) })
	}
}

// server is one running certfleet process (restartable on the same data).
type server struct {
	t        *testing.T
	engine   string
	dataDir  string
	database string
	addr     string
	keyID    string
	secret   string
	args     []string
	env      []string

	mu   sync.Mutex
	cmd  *exec.Cmd
	logs *strings.Builder
	done chan struct{}
}

type serverOpts struct {
	args []string // extra flags
	env  []string
}

// startServer starts certfleet on a free loopback port with fresh storage.
func startServer(t *testing.T, engine string, o serverOpts) *server {
	t.Helper()
	s := &server{t: t, engine: engine, dataDir: t.TempDir(), keyID: "LTAItest" + strings.ReplaceAll(t.Name(), "/", "_"),
		secret: "test-secret-" + fmt.Sprint(time.Now().UnixNano()), args: o.args, env: o.env}
	if len(s.keyID) > 60 {
		s.keyID = s.keyID[:60]
	}
	if engine == "postgres" {
		s.database = testutil.PostgresURL(t)
	}
	s.addr = freeAddr(t)
	s.start()
	t.Cleanup(s.stop)
	return s
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (s *server) start() {
	s.t.Helper()
	args := append([]string{"serve", "--addr", s.addr, "--data-dir", s.dataDir, "--database", s.database, "--log-format", "json"}, s.args...)
	cmd := exec.Command(binary, args...)
	cmd.Env = append(os.Environ(), "CERTFLEET_ROOT_ACCESS_KEY_ID="+s.keyID, "CERTFLEET_ROOT_ACCESS_KEY_SECRET="+s.secret)
	cmd.Env = append(cmd.Env, s.env...)
	logs := &strings.Builder{}
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start certfleet: %v", err)
	}
	done := make(chan struct{})
	var lmu sync.Mutex
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			lmu.Lock()
			logs.WriteString(sc.Text() + "\n")
			lmu.Unlock()
		}
	}()
	go func() {
		cmd.Wait()
		pw.Close()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.logs, s.done = cmd, logs, done
	s.mu.Unlock()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + s.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		select {
		case <-done:
			s.t.Fatalf("certfleet exited during start:\n%s", s.Logs())
		case <-time.After(50 * time.Millisecond):
		}
	}
	s.t.Fatalf("certfleet did not become healthy:\n%s", s.Logs())
}

// Logs returns what the process printed so far.
func (s *server) Logs() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.logs == nil {
		return ""
	}
	return s.logs.String()
}

// kill sends SIGKILL and waits for the process to die.
func (s *server) kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// stop sends SIGTERM and waits (up to 30 s) for a clean exit.
func (s *server) stop() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil || cmd.ProcessState != nil {
		return
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		<-done
	}
	if s.t.Failed() {
		s.t.Logf("certfleet logs:\n%s", s.Logs())
	}
}

// restart kills the process with SIGKILL and starts it again on the same data.
func (s *server) restart() {
	s.kill()
	s.start()
}

// client returns an official SDK client for the root key; v1 selects the
// HMAC-SHA1 (SignatureAlgorithm "v2") scheme.
func (s *server) client(v1 bool) *cas.Client {
	s.t.Helper()
	return s.clientWith(s.keyID, s.secret, v1, nil)
}

func (s *server) clientWith(keyID, secret string, v1 bool, hc *http.Client) *cas.Client {
	s.t.Helper()
	cfg := &openapi.Config{AccessKeyId: tea.String(keyID), AccessKeySecret: tea.String(secret),
		Endpoint: tea.String(s.addr), Protocol: tea.String("http")}
	if v1 {
		cfg.SignatureAlgorithm = tea.String("v2")
	}
	c, err := cas.NewClient(cfg)
	if err != nil {
		s.t.Fatalf("sdk client: %v", err)
	}
	return c
}

// sdkErr extracts code and HTTP status from an SDK error.
func sdkErr(t *testing.T, err error) (code string, status int) {
	t.Helper()
	if err == nil {
		t.Fatal("expected an error, got success")
	}
	var ce *openapi.ClientError
	if errors.As(err, &ce) {
		return tea.StringValue(ce.Code), tea.IntValue(ce.StatusCode)
	}
	var se *openapi.ServerError
	if errors.As(err, &se) {
		return tea.StringValue(se.Code), tea.IntValue(se.StatusCode)
	}
	var te *openapi.ThrottlingError
	if errors.As(err, &te) {
		return tea.StringValue(te.Code), tea.IntValue(te.StatusCode)
	}
	var sdk *tea.SDKError
	if errors.As(err, &sdk) {
		return tea.StringValue(sdk.Code), tea.IntValue(sdk.StatusCode)
	}
	t.Fatalf("not an SDK error: %T %v", err, err)
	return "", 0
}

// waitFor polls cond until it holds or timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
