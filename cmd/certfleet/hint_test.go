package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/testutil"
)

// TestServeHintRunsInAnotherShell runs the eval line serve prints, as a user
// would paste it into a new terminal where certfleet is not on PATH: it must
// name the binary by its absolute path and set up a client that works.
func TestServeHintRunsInAnotherShell(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a certfleet node")
	}
	n := setup(t)
	var evalLine, pasteLine string
	// The hint follows the ready line the harness waited for: wait for it too.
	testutil.WaitFor(t, 30*time.Second, "serve's hint", func() (bool, error) {
		for _, line := range strings.Split(n.Logs(), "\n") {
			if _, rest, ok := strings.Cut(line, "run in any terminal on this machine: "); ok {
				evalLine = rest
			}
			if strings.Contains(line, "and paste the export line it prints") {
				pasteLine = line
			}
		}
		return evalLine != "" && pasteLine != "", nil
	})
	abs, err := filepath.Abs(binary)
	if err != nil {
		t.Fatal(err)
	}
	abs, _ = filepath.EvalSymlinks(abs)
	if !strings.Contains(evalLine, shellQuote(abs)) {
		t.Fatalf("hint %q does not name the binary by its path %s (certfleet is not on this PATH)", evalLine, abs)
	}
	// A new terminal: a clean environment, PATH without the binary's directory.
	sh := exec.Command("sh", "-c", evalLine+` && `+shellQuote(abs)+` cert list -o json`)
	sh.Env = cleanEnv(n.home)
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("the hint's eval line failed: %v\n%s", err, out)
	}

	// When the command inside cannot run, the line fails instead of
	// exporting nothing and exiting 0.
	broken := strings.Replace(evalLine, shellQuote(abs), "/nonexistent/certfleet", 1)
	sh = exec.Command("sh", "-c", broken)
	sh.Env = cleanEnv(n.home)
	if err := sh.Run(); err == nil {
		t.Fatalf("%q exited 0 although its command does not exist", broken)
	}
}
