package api

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestNoEngineDependency keeps the API front apart from the engine: it only
// wakes it (Waker), and the job rules both use live in internal/rollout.
func TestNoEngineDependency(t *testing.T) {
	goBin := filepath.Join(runtime.GOROOT(), "bin", "go")
	if _, err := exec.LookPath(goBin); err != nil {
		goBin = "go"
	}
	out, err := exec.Command(goBin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	for _, forbidden := range []string{"github.com/certfleet/certfleet/internal/engine"} {
		for _, dep := range strings.Fields(string(out)) {
			if dep == forbidden {
				t.Errorf("internal/api depends on %s; the API may only wake the engine (Waker) and use internal/rollout", forbidden)
			}
		}
	}
}
