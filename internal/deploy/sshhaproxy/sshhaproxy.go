// Package sshhaproxy deploys certificates to an HAProxy host over SSH
// (CloudName "ssh", CloudProduct "HAPROXY"): it writes one PEM holding the
// certificate, its chain and its key, tests the configuration and reloads
// HAProxy, once per host for all the resources of a job written together.
//
// The transport, host key pinning and reload rounds live in sshx; this
// package only knows HAProxy's Config.
package sshhaproxy

import (
	"encoding/json"
	"strings"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

// Description is ssh/HAPROXY's Description: its Config keys, documented once.
var Description = sshx.Describe("HAPROXY",
	"Writes one PEM (chain and key) over SFTP to an HAProxy host, tests the configuration and reloads HAProxy once per host.",
	deploy.Field{Name: "PemPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the leaf, the intermediates and the key in one file, mode 0600 (a \"bind … ssl crt\" file)."},
	deploy.Field{Name: "TestCommand", Type: deploy.TypeString, Default: "haproxy -c -f /etc/haproxy/haproxy.cfg", Help: "Checks the configuration before the reload; when it fails the previous file is put back."},
	deploy.Field{Name: "ReloadCommand", Type: deploy.TypeString, Default: "systemctl reload haproxy", Help: "Reloads HAProxy once the files of every resource on the host are written; without systemd, run HAProxy in master-worker mode and use kill -USR2 $(cat /run/haproxy.pid)."},
)

// Config is an ssh/HAPROXY resource's Config decoded through Description.
type Config struct {
	sshx.Remote
	// PemPath receives the leaf, the intermediates and the private key in
	// one file, mode 0600: what a "bind … ssl crt" line names. Required.
	PemPath string
	// TestCommand checks the configuration before the reload. Defaults to
	// "haproxy -c -f /etc/haproxy/haproxy.cfg".
	TestCommand string
	// ReloadCommand reloads HAProxy. Defaults to "systemctl reload haproxy".
	ReloadCommand string
}

// Deployer is the ssh/HAPROXY deployer.
type Deployer struct{ *sshx.Deployer }

var (
	_ deploy.Product         = Deployer{}
	_ deploy.Rollbacker      = Deployer{}
	_ deploy.Snapshotter     = Deployer{}
	_ deploy.ConfigValidator = Deployer{}
	_ deploy.Hoster          = Deployer{}
	_ deploy.Checker         = Deployer{}
)

// New returns the ssh/HAPROXY deployer.
func New(opts sshx.Options) Deployer {
	return Deployer{sshx.New(Description, opts, plan)}
}

// pem is the combined file: full chain, then the key, each ending in a newline.
func pem(b deploy.Bundle) string {
	chain := b.FullChainPEM
	if !strings.HasSuffix(chain, "\n") {
		chain += "\n"
	}
	return chain + b.KeyPEM
}

func plan(config json.RawMessage) (*sshx.Plan, error) {
	var c Config
	if err := Description.DecodeConfig(config, &c); err != nil {
		return nil, err
	}
	p, err := sshx.CheckRemote(c.Remote)
	if err != nil {
		return nil, err
	}
	if err := p.AddFile("PemPath", c.PemPath, 0o600, pem); err != nil {
		return nil, err
	}
	p.TestCommand, p.ReloadCommand = c.TestCommand, c.ReloadCommand
	if p.TestCommand == "" {
		p.TestCommand = "haproxy -c -f /etc/haproxy/haproxy.cfg"
	}
	if p.ReloadCommand == "" {
		p.ReloadCommand = "systemctl reload haproxy"
	}
	return p, nil
}
