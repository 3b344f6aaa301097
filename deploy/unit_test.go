// Package deploy holds the example files for running certfleet as a service
// (the systemd unit and its environment file); this test keeps the unit
// valid. It is not Go code anyone imports.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/proc"
)

// TestSystemdUnitVerifies runs `systemd-analyze verify` on certfleet.service
// with ExecStart pointing at a real certfleet binary: systemd must accept
// every directive (an unknown or misspelt sandboxing key is only a warning,
// so any warning about the unit fails the test too).
func TestSystemdUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		testutil.Missing(t, "systemd-analyze", "apt-get install systemd")
	}
	unit, err := os.ReadFile("certfleet.service")
	if err != nil {
		t.Fatal(err)
	}
	bin, err := proc.Binary()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(unit), "ExecStart=/usr/local/bin/certfleet serve") {
		t.Fatal("certfleet.service does not run /usr/local/bin/certfleet serve")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "certfleet.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/certfleet", bin)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "certfleet.service") {
			t.Errorf("systemd-analyze verify warns: %s", line)
		}
	}
}
