package local

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
)

// TestConformance runs the deployer contract suite against a temporary
// --local-root, with a reload command that counts its runs.
func TestConformance(t *testing.T) {
	t.Parallel()
	e := setup(t)
	stallFIFO := filepath.Join(e.base, "stall.fifo")
	stallCmd := "echo reached > '" + stallFIFO + "'; sleep 30"
	leakKey := e.in("leaky", "a.key")
	leakCmd := "cat '" + leakKey + "'; exit 1"
	d := New(Options{Root: e.root, ReloadAllow: []string{e.reloadCmd, stallCmd, leakCmd}})
	mkdir(t, e.in("leaky"))

	var n atomic.Int64
	// target returns a new resource: three files in a directory of their own.
	target := func(t *testing.T, reload string) deploy.Target {
		id := n.Add(1)
		dir := e.in(fmt.Sprintf("r%d", id))
		mkdir(t, dir)
		cfg, _ := json.Marshal(map[string]any{"CertPath": filepath.Join(dir, "a.pem"), "ChainPath": filepath.Join(dir, "chain.pem"),
			"KeyPath": filepath.Join(dir, "a.key"), "ReloadCommand": reload})
		return deploy.Target{ResourceID: id, CloudName: "local", CloudProduct: "FILE", Domain: "www.example.com", Config: cfg}
	}
	bad := func(cfg map[string]any) json.RawMessage {
		b, _ := json.Marshal(cfg)
		return b
	}
	deploytest.Run(t, deploytest.Harness{
		Deployer: d,
		Target:   func(t *testing.T) deploy.Target { return target(t, e.reloadCmd) },
		// Served is the three files, each as "name=content" or absent.
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			var c Config
			if err := json.Unmarshal(tgt.Config, &c); err != nil {
				t.Fatal(err)
			}
			var out []byte
			for _, p := range []string{c.CertPath, c.ChainPath, c.KeyPath} {
				b, err := os.ReadFile(p)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				out = fmt.Appendf(out, "%s=%s\n", filepath.Base(p), b)
			}
			return out
		},
		Effects: func(t *testing.T, _ deploy.Target) int { return e.reloads(t) },
		BadConfigs: []deploytest.BadConfig{
			{Desc: "an unknown key", Config: bad(map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "Reload": "x"})},
			{Desc: "no KeyPath", Config: bad(map[string]any{"CertPath": e.in("a.pem")})},
			{Desc: "a relative path", Config: bad(map[string]any{"CertPath": "a.pem", "KeyPath": e.in("a.key")})},
			{Desc: "a path outside the root", Config: bad(map[string]any{"CertPath": e.in("a.pem"), "KeyPath": filepath.Join(e.outside, "a.key")})},
			{Desc: "a reload command not allowed", Config: bad(map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "ReloadCommand": "reboot"})},
			{Desc: "a KeyMode that is not octal", Config: bad(map[string]any{"CertPath": e.in("a.pem"), "KeyPath": e.in("a.key"), "KeyMode": "rw"})},
		},
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			if err := syscall.Mkfifo(stallFIFO, 0o600); err != nil {
				t.Fatal(err)
			}
			reached := make(chan struct{})
			go func() {
				os.ReadFile(stallFIFO) // returns once the reload command has written to it
				close(reached)
			}()
			t.Cleanup(func() {
				// Unblock the reader if the reload never ran.
				if f, err := os.OpenFile(stallFIFO, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			})
			return target(t, stallCmd), reached
		},
		Failing: []deploytest.Failing{
			{Desc: "a reload command that fails quoting the key", Target: func(t *testing.T) deploy.Target {
				cfg, _ := json.Marshal(map[string]any{"CertPath": e.in("leaky", "a.pem"), "KeyPath": leakKey, "ReloadCommand": leakCmd})
				return deploy.Target{ResourceID: n.Add(1), CloudName: "local", CloudProduct: "FILE", Domain: "www.example.com", Config: cfg}
			}},
			{Desc: "a directory that does not exist", Target: func(t *testing.T) deploy.Target {
				cfg, _ := json.Marshal(map[string]any{"CertPath": e.in("missing", "a.pem"), "KeyPath": e.in("missing", "a.key")})
				return deploy.Target{ResourceID: n.Add(1), CloudName: "local", CloudProduct: "FILE", Domain: "www.example.com", Config: cfg}
			}},
		},
	})
}
