// Package sshxtest builds the conformance harness (deploytest.Harness) of an
// ssh product against a real OpenSSH server on loopback, logged into as root
// with a generated key.
//
// It is for the ssh products' tests only; the servers themselves come from
// internal/testutil/hosts.
package sshxtest

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/hosts"
)

// Product describes an ssh product to the harness.
type Product struct {
	// Deployer is the product's deployer. Required.
	Deployer deploy.Deployer
	// Name is its CloudProduct, like "NGINX". Required.
	Name string
	// Files returns the Config keys naming a new resource's files, all in
	// dir, like {"CertPath": dir+"/a.pem", "KeyPath": dir+"/a.key"}. Required.
	Files func(dir string) map[string]any
	// Commands are the Config keys running the real server's test and
	// reload (TestCommand, ReloadCommand), for every ordinary target.
	Commands map[string]any
	// Reloads, when set, counts the reloads Commands have made.
	Reloads func(t testing.TB) int
	// BadConfigs are added to the Configs every ssh product refuses.
	BadConfigs []deploytest.BadConfig
}

var ids atomic.Int64

// Harness starts an sshd (with a sudo shim when sudo is set, and then every
// target sets Sudo) and returns the conformance harness of p on it.
func Harness(t *testing.T, p Product, sudo bool) deploytest.Harness {
	t.Helper()
	h := hosts.StartSSHD(t, sudo)
	access := &deploy.Access{ID: 1, CloudName: "ssh", SecretID: "root", SecretKey: h.ClientKey}
	target := func(t *testing.T, extra map[string]any) deploy.Target {
		dir := t.TempDir()
		cfg := map[string]any{"Host": "127.0.0.1", "Port": h.Port, "HostKey": h.HostKey, "CommandTimeoutSeconds": 60}
		if sudo {
			cfg["Sudo"] = true
		}
		maps.Copy(cfg, p.Files(dir))
		maps.Copy(cfg, extra)
		raw, err := json.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return deploy.Target{ResourceID: ids.Add(1), CloudName: "ssh", CloudProduct: p.Name, Domain: "www.example.com",
			Config: raw, Access: access}
	}
	// files lists the paths tgt's Config names, in a fixed order.
	files := func(t *testing.T, tgt deploy.Target) []string {
		var cfg map[string]any
		if err := json.Unmarshal(tgt.Config, &cfg); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range slices.Sorted(maps.Keys(p.Files("/"))) {
			out = append(out, cfg[k].(string))
		}
		return out
	}
	good := func(extra map[string]any) json.RawMessage {
		cfg := map[string]any{"Host": "127.0.0.1", "Port": h.Port, "HostKey": h.HostKey}
		maps.Copy(cfg, p.Files("/tmp"))
		for k, v := range extra {
			if v == nil {
				delete(cfg, k)
			} else {
				cfg[k] = v
			}
		}
		raw, _ := json.Marshal(cfg)
		return raw
	}
	var firstFile string
	for _, k := range slices.Sorted(maps.Keys(p.Files("/"))) {
		firstFile = k
		break
	}
	return deploytest.Harness{
		Deployer: p.Deployer,
		Target:   func(t *testing.T) deploy.Target { return target(t, p.Commands) },
		// Served is the resource's files on the host (this machine), each
		// as "name=content" or absent.
		Served: func(t *testing.T, tgt deploy.Target) []byte {
			var out []byte
			for _, path := range files(t, tgt) {
				b, err := os.ReadFile(path)
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				out = fmt.Appendf(out, "%s=%s\n", filepath.Base(path), b)
			}
			return out
		},
		Effects: func(t *testing.T, _ deploy.Target) int {
			if p.Reloads == nil {
				return 0
			}
			return p.Reloads(t)
		},
		BadConfigs: append([]deploytest.BadConfig{
			{Desc: "no Host", Config: good(map[string]any{"Host": nil})},
			{Desc: "a Host with a space", Config: good(map[string]any{"Host": "web 1"})},
			{Desc: "no HostKey", Config: good(map[string]any{"HostKey": nil})},
			{Desc: "a HostKey that is no key", Config: good(map[string]any{"HostKey": "SHA256:short"})},
			{Desc: "a Port out of range", Config: good(map[string]any{"Port": 70000})},
			{Desc: "an unknown key", Config: good(map[string]any{"Hots": "web1"})},
			{Desc: "a relative " + firstFile, Config: good(map[string]any{firstFile: "tls/a.pem"})},
			{Desc: "no " + firstFile, Config: good(map[string]any{firstFile: nil})},
		}, p.BadConfigs...),
		Stall: func(t *testing.T) (deploy.Target, <-chan struct{}) {
			fifo := filepath.Join(t.TempDir(), "stall.fifo")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Fatal(err)
			}
			reached := make(chan struct{})
			go func() {
				os.ReadFile(fifo) // returns once the reload command has written to it
				close(reached)
			}()
			t.Cleanup(func() {
				if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
			})
			return target(t, map[string]any{"TestCommand": "true", "ReloadCommand": "echo reached > " + sshx.ShellQuote(fifo) + "; sleep 30"}), reached
		},
		Failing: []deploytest.Failing{
			{Desc: "a TestCommand that fails quoting the key", Target: func(t *testing.T) deploy.Target {
				return withCommands(t, target(t, nil), files, "cat%s; exit 1", "true")
			}},
			{Desc: "a ReloadCommand that fails quoting the key", Target: func(t *testing.T) deploy.Target {
				return withCommands(t, target(t, nil), files, "true", "cat%s >&2; exit 1")
			}},
			{Desc: "a host presenting another host key", Target: func(t *testing.T) deploy.Target {
				return target(t, map[string]any{"HostKey": "SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI"})
			}},
			{Desc: "nothing listening", Target: func(t *testing.T) deploy.Target {
				_, port, _ := net.SplitHostPort(testutil.FreeAddr(t))
				return target(t, map[string]any{"Port": json.Number(port)})
			}},
		},
	}
}

// withCommands sets tgt's TestCommand and ReloadCommand; a "%s" in either
// becomes the resource's files, quoted and each preceded by a space.
func withCommands(t *testing.T, tgt deploy.Target, files func(*testing.T, deploy.Target) []string, test, reload string) deploy.Target {
	var paths string
	for _, f := range files(t, tgt) {
		paths += " " + sshx.ShellQuote(f)
	}
	var cfg map[string]any
	if err := json.Unmarshal(tgt.Config, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["TestCommand"], cfg["ReloadCommand"] = strings.ReplaceAll(test, "%s", paths), strings.ReplaceAll(reload, "%s", paths)
	var err error
	if tgt.Config, err = json.Marshal(cfg); err != nil {
		t.Fatal(err)
	}
	return tgt
}
