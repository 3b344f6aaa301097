// Package sshnginx deploys certificates to an NGINX host over SSH
// (CloudName "ssh", CloudProduct "NGINX"): it writes the full chain and the
// key with SFTP, runs the config test and reloads NGINX, once per host for
// all the resources of a job written together.
//
// The transport, host key pinning and reload rounds live in sshx; this
// package only knows NGINX's Config.
package sshnginx

import (
	"encoding/json"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

// Description is ssh/NGINX's Description: its Config keys, documented once.
var Description = sshx.Describe("NGINX",
	"Writes the full chain and key over SFTP to an NGINX host, tests the configuration and reloads NGINX once per host.",
	deploy.Field{Name: "CertPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the full chain, mode 0644 (nginx's ssl_certificate)."},
	deploy.Field{Name: "KeyPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the private key, mode 0600 (nginx's ssl_certificate_key)."},
	deploy.Field{Name: "TestCommand", Type: deploy.TypeString, Default: "nginx -t", Help: "Checks the configuration before the reload; when it fails the previous files are put back."},
	deploy.Field{Name: "ReloadCommand", Type: deploy.TypeString, Default: "nginx -s reload", Help: "Reloads NGINX once the files of every resource on the host are written."},
)

// Config is an ssh/NGINX resource's Config decoded through Description.
type Config struct {
	sshx.Remote
	// CertPath receives the full chain (leaf, then intermediates), mode
	// 0644: nginx's ssl_certificate. Required.
	CertPath string
	// KeyPath receives the private key, mode 0600: ssl_certificate_key.
	// Required.
	KeyPath string
	// TestCommand checks the configuration before the reload. Defaults to
	// "nginx -t".
	TestCommand string
	// ReloadCommand reloads nginx. Defaults to "nginx -s reload".
	ReloadCommand string
}

// Deployer is the ssh/NGINX deployer.
type Deployer struct{ *sshx.Deployer }

var (
	_ deploy.Product         = Deployer{}
	_ deploy.Rollbacker      = Deployer{}
	_ deploy.Snapshotter     = Deployer{}
	_ deploy.ConfigValidator = Deployer{}
	_ deploy.Hoster          = Deployer{}
	_ deploy.Checker         = Deployer{}
)

// New returns the ssh/NGINX deployer.
func New(opts sshx.Options) Deployer {
	return Deployer{sshx.New(Description, opts, plan)}
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
	if err := p.AddFile("CertPath", c.CertPath, 0o644, func(b deploy.Bundle) string { return b.FullChainPEM }); err != nil {
		return nil, err
	}
	if err := p.AddFile("KeyPath", c.KeyPath, 0o600, func(b deploy.Bundle) string { return b.KeyPEM }); err != nil {
		return nil, err
	}
	p.TestCommand, p.ReloadCommand = c.TestCommand, c.ReloadCommand
	if p.TestCommand == "" {
		p.TestCommand = "nginx -t"
	}
	if p.ReloadCommand == "" {
		p.ReloadCommand = "nginx -s reload"
	}
	return p, nil
}
