package proc

import (
	"context"
	"net/http"
	"testing"
	"time"
)

// TestNodeKillRestart starts a node on port 0, kills it with SIGKILL and
// starts it again on the same data and address.
func TestNodeKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs certfleet")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n, err := Start(ctx, Options{Args: []string{"--data-dir", t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop(30 * time.Second)
	addr := n.Addr()
	healthy := func() {
		t.Helper()
		resp, err := http.Get("http://" + addr + "/healthz")
		if err != nil {
			t.Fatalf("healthz: %v", err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("healthz: %d", resp.StatusCode)
		}
	}
	healthy()
	pid := n.Pid()
	if err := n.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Addr() != addr || n.Pid() == pid {
		t.Fatalf("after a restart the node is at %s pid %d, want %s and a new pid than %d", n.Addr(), n.Pid(), addr, pid)
	}
	healthy()
	if err := n.WaitOutput(ctx, ReadyPrefix+addr); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(30 * time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
}
