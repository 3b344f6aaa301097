package sshfile

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certfleet/certfleet/internal/deploy/deploytest"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
	"github.com/certfleet/certfleet/internal/deploy/sshx/sshxtest"
)

// TestConformance runs the deployer contract suite over a loopback sshd,
// with files written over SFTP. (The Sudo path, every file operation a
// remote command, is left to the e2e test TestSSHNginxSudo: the whole suite
// through it takes minutes on a loaded machine.)
func TestConformance(t *testing.T) {
	for _, tc := range []struct {
		desc string
		sudo bool
	}{
		{desc: "SFTP"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			log := filepath.Join(t.TempDir(), "reloads.log")
			reloads := func(t testing.TB) int {
				b, err := os.ReadFile(log)
				if os.IsNotExist(err) {
					return 0
				}
				if err != nil {
					t.Fatal(err)
				}
				return strings.Count(string(b), "reload\n")
			}
			deploytest.Run(t, sshxtest.Harness(t, sshxtest.Product{
				Deployer: New(sshx.Options{}),
				Name:     "FILE",
				Files: func(dir string) map[string]any {
					return map[string]any{"CertPath": filepath.Join(dir, "a.pem"), "ChainPath": filepath.Join(dir, "chain.pem"),
						"KeyPath": filepath.Join(dir, "a.key")}
				},
				Commands: map[string]any{"TestCommand": "true", "ReloadCommand": "echo reload >> " + sshx.ShellQuote(log)},
				Reloads:  reloads,
				BadConfigs: []deploytest.BadConfig{
					{Desc: "a KeyMode that is not octal", Config: json.RawMessage(`{"Host":"web1","HostKey":"SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI","CertPath":"/a.pem","KeyPath":"/a.key","KeyMode":"rw"}`)},
					{Desc: "an Owner that is no user", Config: json.RawMessage(`{"Host":"web1","HostKey":"SHA256:ZCFYHwsQn2jcUap9zU4DpUV5kZ1F7+VURBrtQoxxNVI","CertPath":"/a.pem","KeyPath":"/a.key","Owner":"a b"}`)},
				},
			}, tc.sudo))
		})
	}
}
