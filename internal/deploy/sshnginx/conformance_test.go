package sshnginx

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
	"github.com/certfleet/certfleet/internal/deploy/sshx/sshxtest"
	"github.com/certfleet/certfleet/internal/testutil/hosts"
)

// TestConformance runs the deployer contract suite over a loopback sshd,
// with a real nginx's config test and reload.
func TestConformance(t *testing.T) {
	n := hosts.StartNginx(t, "www.example.com")
	deploytest.Run(t, sshxtest.Harness(t, sshxtest.Product{
		Deployer: New(sshx.Options{}),
		Name:     "NGINX",
		Files: func(dir string) map[string]any {
			return map[string]any{"CertPath": filepath.Join(dir, "a.pem"), "KeyPath": filepath.Join(dir, "a.key")}
		},
		Commands: map[string]any{"TestCommand": n.TestCommand(), "ReloadCommand": n.ReloadCommand()},
		Reloads:  n.Reloads,
		BadConfigs: []deploytest.BadConfig{
			{Desc: "CertPath and KeyPath the same file", Config: json.RawMessage(`{"Host":"127.0.0.1","HostKey":"` + hostKey + `","CertPath":"/tmp/a.pem","KeyPath":"/tmp/x/../a.pem"}`)},
		},
	}, false))
}
