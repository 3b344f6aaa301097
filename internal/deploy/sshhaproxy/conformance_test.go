package sshhaproxy

import (
	"path/filepath"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
	"github.com/certfleet/certfleet/internal/deploy/sshx/sshxtest"
	"github.com/certfleet/certfleet/internal/testutil/hosts"
)

// TestConformance runs the deployer contract suite over a loopback sshd,
// with a real HAProxy's config check and reload.
func TestConformance(t *testing.T) {
	h := hosts.StartHAProxy(t, "www.example.com")
	deploytest.Run(t, sshxtest.Harness(t, sshxtest.Product{
		Deployer: New(sshx.Options{}),
		Name:     "HAPROXY",
		Files: func(dir string) map[string]any {
			return map[string]any{"PemPath": filepath.Join(dir, "site.pem")}
		},
		Commands: map[string]any{"TestCommand": h.TestCommand(), "ReloadCommand": h.ReloadCommand()},
		Reloads:  h.Reloads,
	}, false))
}
