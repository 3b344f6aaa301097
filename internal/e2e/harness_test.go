// Package e2e drives real `certfleet serve` processes with the official
// Alibaba Cloud SDK, on SQLite and on PostgreSQL.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	openapi "github.com/alibabacloud-go/darabonba-openapi/v2/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/proc"
)

// certfleetBinary is the certfleet command, built once for all test
// processes of this source (internal/testutil/proc).
func certfleetBinary(t *testing.T) string {
	t.Helper()
	bin, err := proc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// skipShort skips a test that runs certfleet processes under -short (go test
// -short ./... runs the fast layers only).
func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("end-to-end: runs certfleet processes; skipped under -short")
	}
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
	addr     string // set by start; empty before: a port the kernel picks
	keyID    string
	secret   string
	args     []string
	env      []string

	mu   sync.Mutex
	node *proc.Node
}

type serverOpts struct {
	args []string // extra flags
	env  []string
}

// startServer starts certfleet on a free loopback port with fresh storage.
func startServer(t *testing.T, engine string, o serverOpts) *server {
	t.Helper()
	skipShort(t)
	s := &server{t: t, engine: engine, dataDir: t.TempDir(), keyID: "LTAItest" + strings.ReplaceAll(t.Name(), "/", "_"),
		secret: "test-secret-" + fmt.Sprint(time.Now().UnixNano()), args: o.args, env: o.env}
	if len(s.keyID) > 60 {
		s.keyID = s.keyID[:60]
	}
	if engine == "postgres" {
		s.database = testutil.PostgresURL(t)
	}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// start starts the process: the first time on a port the kernel picks,
// after kill or stop on the same data and address.
func (s *server) start() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	if n != nil {
		if err := n.Start(ctx); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	env := append(os.Environ(), "CERTFLEET_ROOT_ACCESS_KEY_ID="+s.keyID, "CERTFLEET_ROOT_ACCESS_KEY_SECRET="+s.secret)
	n, err := proc.Start(ctx, proc.Options{Binary: certfleetBinary(s.t), Env: append(env, s.env...),
		Args: append([]string{"--data-dir", s.dataDir, "--database", s.database, "--log-format", "json"}, s.args...)})
	if err != nil {
		s.t.Fatal(err)
	}
	s.mu.Lock()
	s.node, s.addr = n, n.Addr()
	s.mu.Unlock()
}

// Logs returns what the process printed so far (across restarts).
func (s *server) Logs() string {
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	if n == nil {
		return ""
	}
	return n.Logs()
}

// expiryScanDone is the debug line the expiry scan logs after each scan.
const expiryScanDone = `"msg":"expiry scan done"`

// logCount returns how many times the current process has logged s.
func (s *server) logCount(text string) int {
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	return n.OutputCount(text)
}

// waitLog waits until the current process has logged text count times: a
// loop's log line shows it ran past a point.
func (s *server) waitLog(count int, text string) {
	s.t.Helper()
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := n.WaitOutputN(ctx, text, count); err != nil {
		s.t.Fatal(err)
	}
}

// signal sends sig (SIGSTOP, SIGCONT) to the process.
func (s *server) signal(sig os.Signal) {
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	if n != nil {
		n.Signal(sig)
	}
}

// kill sends SIGKILL and waits for the process to die.
func (s *server) kill() {
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	if n != nil {
		n.Kill()
	}
}

// stop sends SIGTERM and waits (up to 30 s) for a clean exit.
func (s *server) stop() {
	s.mu.Lock()
	n := s.node
	s.mu.Unlock()
	if n == nil {
		return
	}
	// Longer than the node's own --shutdown-timeout (30 s), so a graceful
	// stop is never cut short by a kill that would leave its leases behind.
	if err := n.Stop(60 * time.Second); err != nil {
		s.t.Logf("stop: %v", err)
	}
	if s.t.Failed() {
		s.t.Logf("certfleet logs:\n%s", s.Logs())
	}
}

// restart kills the process with SIGKILL and starts it again on the same data.
func (s *server) restart() {
	s.t.Helper()
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
