// Package sshfile deploys certificates as plain files on a host reached over
// SSH (CloudName "ssh", CloudProduct "FILE"), for any software that reads
// PEM files, optionally followed by a test and a reload command.
//
// The transport, host key pinning and reload rounds live in sshx; this
// package only knows the FILE product's Config.
package sshfile

import (
	"encoding/json"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/deploy/sshx"
)

// Description is ssh/FILE's Description: its Config keys, documented once.
var Description = sshx.Describe("FILE",
	"Writes PEM files over SFTP to any host, then optionally runs a test and a reload command.",
	deploy.Field{Name: "CertPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the full chain (leaf, then intermediates), mode 0644."},
	deploy.Field{Name: "KeyPath", Type: deploy.TypeString, Required: true, Help: "Absolute path that receives the private key, with KeyMode."},
	deploy.Field{Name: "ChainPath", Type: deploy.TypeString, Help: "Absolute path that receives the intermediates alone, mode 0644."},
	deploy.Field{Name: "KeyMode", Type: deploy.TypeString, Default: "0600", Help: "The key file's permission bits, in octal; at most 0640 (no write for the group, nothing for others)."},
	deploy.Field{Name: "Owner", Type: deploy.TypeString, Help: "\"user\" or \"user:group\" given every written file (chown: needs root or Sudo); default the login user."},
	deploy.Field{Name: "TestCommand", Type: deploy.TypeString, Help: "Runs before ReloadCommand; when it fails the previous files are put back."},
	deploy.Field{Name: "ReloadCommand", Type: deploy.TypeString, Help: "Runs after the files of every resource on the host are written."},
)

// Config is an ssh/FILE resource's Config decoded through Description.
type Config struct {
	sshx.Remote
	// CertPath receives the full chain (leaf, then intermediates), mode
	// 0644. Required.
	CertPath string
	// KeyPath receives the private key, with KeyMode. Required.
	KeyPath string
	// ChainPath, when set, receives the intermediates alone, mode 0644.
	ChainPath string
	// KeyMode is the key file's permission bits in octal, like "0640".
	// Defaults to "0600".
	KeyMode string
	// Owner, "user" or "user:group", is given every written file (chown;
	// needs root, or Sudo). Defaults to the login user.
	Owner string
	// TestCommand, when set, runs before ReloadCommand; if it fails the
	// previous files are put back.
	TestCommand string
	// ReloadCommand, when set, runs after the files are written.
	ReloadCommand string
}

// Deployer is the ssh/FILE deployer.
type Deployer struct{ *sshx.Deployer }

var (
	_ deploy.Product         = Deployer{}
	_ deploy.Rollbacker      = Deployer{}
	_ deploy.Snapshotter     = Deployer{}
	_ deploy.ConfigValidator = Deployer{}
	_ deploy.Hoster          = Deployer{}
	_ deploy.Checker         = Deployer{}
)

// New returns the ssh/FILE deployer.
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
	keyMode, err := sshx.ParseMode("KeyMode", c.KeyMode, 0o600)
	if err != nil {
		return nil, err
	}
	if err := deploy.CheckKeyMode("KeyMode", keyMode); err != nil {
		return nil, err
	}
	if err := p.SetOwner(c.Owner); err != nil {
		return nil, err
	}
	if err := p.AddFile("CertPath", c.CertPath, 0o644, func(b deploy.Bundle) string { return b.FullChainPEM }); err != nil {
		return nil, err
	}
	if c.ChainPath != "" {
		if err := p.AddFile("ChainPath", c.ChainPath, 0o644, func(b deploy.Bundle) string { return b.ChainPEM }); err != nil {
			return nil, err
		}
	}
	if err := p.AddFile("KeyPath", c.KeyPath, keyMode, func(b deploy.Bundle) string { return b.KeyPEM }); err != nil {
		return nil, err
	}
	p.TestCommand, p.ReloadCommand = c.TestCommand, c.ReloadCommand
	return p, nil
}
