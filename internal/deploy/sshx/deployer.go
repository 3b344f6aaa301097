package sshx

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

// RemoteFields describes Remote's keys; every ssh product's Description
// starts with them (Product builds the Description).
var RemoteFields = []deploy.Field{
	{Name: "Host", Type: deploy.TypeString, Required: true, Help: "The target's host name or IP address."},
	{Name: "Port", Type: deploy.TypeInteger, Min: 1, Max: 65535, Default: "22", Help: "sshd's TCP port."},
	{Name: "HostKey", Type: deploy.TypeString, Required: true,
		Help: "Pins the host's key: its public key as in a .pub file (\"ssh-ed25519 AAAA…\"; cat /etc/ssh/ssh_host_ed25519_key.pub) or its fingerprint (\"SHA256:…\"; ssh-keygen -lf); a host presenting any other key is refused."},
	{Name: "Sudo", Type: deploy.TypeBoolean, Default: "false", Help: "Run the commands and file operations as root through \"sudo -n\" (passwordless sudo for sh needed); without it files are written over SFTP as the login user."},
	{Name: "CommandTimeoutSeconds", Type: deploy.TypeInteger, Min: 0, Max: 3600,
		Help: "Seconds TestCommand and ReloadCommand may each run; 0 or absent means the server's command timeout (60 s)."},
}

// Access describes the credential every ssh product takes.
var Access = deploy.AccessSpec{
	Need:      deploy.AccessRequired,
	SecretId:  "the login user",
	SecretKey: "a private key in PEM (OpenSSH, PKCS#1 or PKCS#8: anything containing -----BEGIN), or else the user's password",
	Config: []deploy.Field{
		{Name: "Passphrase", Type: deploy.TypeString, Secret: true, Help: "Decrypts SecretKey when it is an encrypted private key."},
	},
}

// Describe builds an ssh product's Description: RemoteFields, then the
// product's own keys, and Access.
func Describe(product, summary string, fields ...deploy.Field) deploy.Description {
	return deploy.Description{
		CloudName:    "ssh",
		CloudProduct: product,
		Summary:      summary,
		Config:       append(slices.Clone(RemoteFields), fields...),
		Access:       Access,
	}
}

// Options are the server's settings for ssh targets.
type Options struct {
	// CommandTimeout bounds test and reload commands when the resource sets
	// no CommandTimeoutSeconds. Defaults to 60s.
	CommandTimeout time.Duration
	// Egress makes the connections, under the egress policy of the
	// resource's account (deploy.Target.AccountID). nil: the default policy
	// with every account treated as the root account.
	Egress *egress.Dialer
}

// Remote is the part of every ssh product's Config that says where the host
// is and how to trust it. Products embed it in their Config.
type Remote struct {
	// Host is the target's host name or IP address. Required.
	Host string
	// Port is sshd's port. Defaults to 22.
	Port int
	// HostKey pins the host's key: "ssh-ed25519 AAAA…" or "SHA256:…".
	// Required; a host presenting another key is refused.
	HostKey string
	// Sudo runs the commands and the file operations through "sudo -n"
	// (passwordless sudo required). Defaults to false.
	Sudo bool
	// CommandTimeoutSeconds bounds TestCommand and ReloadCommand. Defaults to
	// the server's command timeout (60 s).
	CommandTimeoutSeconds int
}

// File is one remote file a product writes.
type File struct {
	Key     string // the Config key naming it, for errors
	Path    string
	Mode    fs.FileMode
	Content func(deploy.Bundle) string
}

// Plan is a product's Config, checked: what to connect to, which files to
// write with what, and which commands to run.
type Plan struct {
	Remote
	Pin            HostKeyPin
	Files          []File // in write order
	Owner          string // chown target for written files; empty keeps the login user
	TestCommand    string
	ReloadCommand  string
	commandTimeout time.Duration
}

var (
	hostRE  = regexp.MustCompile(`^[A-Za-z0-9._:-]+$`)
	ownerRE = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._-]*(:[A-Za-z0-9._][A-Za-z0-9._-]*)?$`)
)

// CheckRemote validates r (already checked against RemoteFields) and starts
// a Plan from it.
func CheckRemote(r Remote) (*Plan, error) {
	if !hostRE.MatchString(r.Host) {
		return nil, fmt.Errorf("Config key \"Host\" must be a host name or IP address (got %q)", r.Host)
	}
	if r.Port == 0 {
		r.Port = 22
	}
	pin, err := ParseHostKey(r.HostKey)
	if err != nil {
		return nil, err
	}
	return &Plan{Remote: r, Pin: pin}, nil
}

// AddFile appends a file to p after checking its path: absolute, no NUL or
// newline, and not named by another key.
func (p *Plan) AddFile(key, filePath string, mode fs.FileMode, content func(deploy.Bundle) string) error {
	if filePath == "" {
		return fmt.Errorf("Config key %q is required", key)
	}
	if !strings.HasPrefix(filePath, "/") || strings.ContainsAny(filePath, "\x00\n\r") {
		return fmt.Errorf("Config key %q must be an absolute path (got %q)", key, filePath)
	}
	clean := path.Clean(filePath)
	if clean == "/" {
		return fmt.Errorf("Config key %q names no file (got %q)", key, filePath)
	}
	for _, f := range p.Files {
		if f.Path == clean {
			return fmt.Errorf("Config keys %s and %s name the same file %s", f.Key, key, clean)
		}
	}
	p.Files = append(p.Files, File{Key: key, Path: clean, Mode: mode, Content: content})
	return nil
}

// SetOwner checks and sets the owner of written files: "user" or "user:group".
func (p *Plan) SetOwner(owner string) error {
	if owner != "" && !ownerRE.MatchString(owner) {
		return fmt.Errorf("Config key \"Owner\" must be \"user\" or \"user:group\" (got %q)", owner)
	}
	p.Owner = owner
	return nil
}

// ParseMode parses an octal permission string like "0640"; empty gives def.
func ParseMode(key, s string, def fs.FileMode) (fs.FileMode, error) {
	if s == "" {
		return def, nil
	}
	m, err := strconv.ParseUint(s, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("Config key %q must be an octal permission like \"0600\" (got %q)", key, s)
	}
	return fs.FileMode(m), nil
}

// Deployer is the deployment logic every ssh product shares; a product
// supplies its Description and the function turning its Config into a Plan.
// It is safe for concurrent use. Connections and reload rounds are shared
// by every ssh Deployer in the process.
type Deployer struct {
	desc   deploy.Description
	name   string // "ssh/NGINX", prefix of Config errors
	plan   func(config json.RawMessage) (*Plan, error)
	opts   Options
	pool   *Pool
	rounds *rounds
}

var (
	_ deploy.Product         = (*Deployer)(nil)
	_ deploy.Rollbacker      = (*Deployer)(nil)
	_ deploy.Snapshotter     = (*Deployer)(nil)
	_ deploy.ConfigValidator = (*Deployer)(nil)
	_ deploy.Hoster          = (*Deployer)(nil)
	_ deploy.Checker         = (*Deployer)(nil)
)

var (
	sharedPool   = NewPool(IdleClose)
	sharedRounds = newRounds()
)

// New returns the Deployer of the product desc describes; plan decodes a
// Config with desc.DecodeConfig and checks what the description cannot (its
// errors name the key and are made permanent here).
func New(desc deploy.Description, opts Options, plan func(config json.RawMessage) (*Plan, error)) *Deployer {
	return &Deployer{desc: desc, name: desc.Name(), plan: plan, opts: opts, pool: sharedPool, rounds: sharedRounds}
}

// Describe returns the product's Description.
func (d *Deployer) Describe() deploy.Description { return d.desc }

func (d *Deployer) planOf(config json.RawMessage) (*Plan, error) {
	p, err := d.plan(config)
	if deploy.IsPermanent(err) {
		return nil, err
	}
	if err != nil {
		return nil, deploy.Permanentf("%s: %w", d.name, err)
	}
	p.commandTimeout = 60 * time.Second
	if d.opts.CommandTimeout > 0 {
		p.commandTimeout = d.opts.CommandTimeout
	}
	if p.CommandTimeoutSeconds > 0 {
		p.commandTimeout = time.Duration(p.CommandTimeoutSeconds) * time.Second
	}
	return p, nil
}

// ValidateConfig checks the Config without connecting.
func (d *Deployer) ValidateConfig(config json.RawMessage) error {
	_, err := d.planOf(config)
	return err
}

// Host names the target host ("ssh:host:port") for per-host limits.
func (d *Deployer) Host(t deploy.Target) string {
	p, err := d.planOf(t.Config)
	if err != nil {
		return ""
	}
	return "ssh:" + net.JoinHostPort(p.Host, strconv.Itoa(p.Port))
}

// session is one call's plan, connection and file operations.
type session struct {
	p     *Plan
	c     *Conn
	files *Files
	done  func() // ends the session: releases the connection, leaves the host's round count
}

func (d *Deployer) open(ctx context.Context, t deploy.Target) (*session, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.planOf(t.Config)
	if err != nil {
		return nil, err
	}
	cred, err := ParseCredential(t.Access)
	if err != nil {
		return nil, err
	}
	ep := Endpoint{Addr: net.JoinHostPort(p.Host, strconv.Itoa(p.Port)), Pin: p.Pin, Cred: cred,
		Dialer: d.opts.Egress.For(t.AccountID)}
	key := d.roundKey(ep.key(), p)
	d.rounds.begin(key)
	c, err := d.pool.Get(ctx, ep)
	if err != nil {
		d.rounds.end(key)
		return nil, err
	}
	return &session{p: p, c: c, files: c.Files(p.Sudo), done: func() { c.Release(); d.rounds.end(key) }}, nil
}

func (d *Deployer) roundKey(connKey string, p *Plan) string {
	return strings.Join([]string{connKey, strconv.FormatBool(p.Sudo), p.TestCommand, p.ReloadCommand}, "\x00")
}

// snapshot is the previous state, as JSON: for each path written, its former
// content (base64), or null when it did not exist.
type snapshot map[string]*[]byte

// pems returns the contents s holds.
func (s snapshot) pems() []string {
	var out []string
	for _, b := range s {
		if b != nil {
			out = append(out, string(*b))
		}
	}
	return out
}

func (s *session) capture(ctx context.Context) (snapshot, error) {
	prev := snapshot{}
	for _, f := range s.p.Files {
		old, err := s.files.Read(ctx, f.Path)
		if err != nil {
			return nil, err
		}
		if old == nil {
			ok, err := s.files.DirExists(ctx, f.Path)
			if err != nil {
				return nil, fmt.Errorf("ssh: %s: %w", s.c.ep, err)
			}
			if !ok {
				return nil, deploy.Permanentf("ssh: %s: %s: directory %s does not exist; create it on the host", s.c.ep, f.Key, path.Dir(f.Path))
			}
		}
		prev[f.Path] = old
	}
	return prev, nil
}

// restore puts back prev's content for each of files (removing those that
// did not exist) and returns every failure.
func (s *session) restore(ctx context.Context, files []File, prev snapshot) error {
	var errs []error
	for _, f := range files {
		old, ok := prev[f.Path]
		switch {
		case !ok:
		case old == nil:
			errs = append(errs, s.files.Remove(ctx, f.Path))
		default:
			errs = append(errs, s.files.Write(ctx, f.Path, *old, f.Mode, s.p.Owner))
		}
	}
	return errors.Join(errs...)
}

func contents(name string, p *Plan, b deploy.Bundle) ([][]byte, error) {
	if b.CertPEM == "" && b.FullChainPEM == "" || b.KeyPEM == "" {
		return nil, deploy.Permanentf("%s: certificate %d has no certificate or no private key to deploy", name, b.CertID)
	}
	if b.FullChainPEM == "" {
		b.FullChainPEM = b.CertPEM + b.ChainPEM
	}
	out := make([][]byte, len(p.Files))
	for i, f := range p.Files {
		out[i] = []byte(f.Content(b))
	}
	return out, nil
}

// Snapshot reads the files Deploy would replace (over SFTP, or sudo cat)
// and returns them as the previous state, writing nothing.
func (d *Deployer) Snapshot(ctx context.Context, req deploy.Request) ([]byte, error) {
	s, err := d.open(ctx, req.Target)
	if err != nil {
		return nil, err
	}
	defer s.done()
	prev, err := s.capture(ctx)
	if err != nil {
		return nil, err
	}
	return marshal(prev), nil
}

// Deploy records the current files, writes the new ones atomically (each to
// a temporary file in the same directory, renamed over the target), then
// joins the host's reload round: TestCommand and ReloadCommand run once for
// every resource of the host written at about the same time (see round.go).
// If the test fails, the previous files are put back and the error, quoting
// the command's output, is permanent; a failed reload restores them too and
// is transient. A host key mismatch or rejected credential is permanent;
// connection failures and timeouts are transient.
func (d *Deployer) Deploy(ctx context.Context, req deploy.Request) ([]byte, error) {
	s, err := d.open(ctx, req.Target)
	if err != nil {
		return nil, err
	}
	defer s.done()
	data, err := contents(d.name, s.p, req.Bundle)
	if err != nil {
		return nil, err
	}
	prev, err := s.capture(ctx)
	if err != nil {
		return nil, err
	}
	for i, f := range s.p.Files {
		if err := s.files.Write(ctx, f.Path, data[i], f.Mode, s.p.Owner); err != nil {
			return nil, errors.Join(err, s.restore(context.WithoutCancel(ctx), s.p.Files[:i], prev))
		}
	}
	undo := func(ctx context.Context) error { return s.restore(ctx, s.p.Files, prev) }
	if err := d.settle(ctx, s, undo, append(prev.pems(), req.Bundle.FullChainPEM, req.Bundle.KeyPEM)); err != nil {
		return nil, err
	}
	return marshal(prev), nil
}

// Rollback writes back the files recorded in previous (removing those that
// did not exist; a nil previous removes the configured files), then joins
// the host's reload round. A failing TestCommand leaves the restored files
// in place and fails permanently.
func (d *Deployer) Rollback(ctx context.Context, req deploy.Request, previous []byte) error {
	s, err := d.open(ctx, req.Target)
	if err != nil {
		return err
	}
	defer s.done()
	prev := snapshot{}
	if previous != nil {
		if err := json.Unmarshal(previous, &prev); err != nil {
			return deploy.Permanentf("%s: decode previous state: %w", d.name, err)
		}
	} else {
		for _, f := range s.p.Files {
			prev[f.Path] = nil
		}
	}
	var files []File
	for _, p := range slices.Sorted(maps.Keys(prev)) {
		i := slices.IndexFunc(s.p.Files, func(f File) bool { return f.Path == p })
		if i >= 0 {
			files = append(files, s.p.Files[i])
			continue
		}
		files = append(files, File{Key: "previous", Path: p, Mode: 0o600})
	}
	if err := s.restore(ctx, files, prev); err != nil {
		return err
	}
	return d.settle(ctx, s, nil, append(prev.pems(), req.Bundle.FullChainPEM, req.Bundle.KeyPEM))
}

// AlreadyDeployed reports whether every configured file already holds
// exactly what Deploy would write (modes and owners are not compared).
func (d *Deployer) AlreadyDeployed(ctx context.Context, req deploy.Request) (bool, error) {
	s, err := d.open(ctx, req.Target)
	if err != nil {
		return false, err
	}
	defer s.done()
	data, err := contents(d.name, s.p, req.Bundle)
	if err != nil {
		return false, err
	}
	for i, f := range s.p.Files {
		have, err := s.files.Read(ctx, f.Path)
		if err != nil {
			return false, err
		}
		if have == nil || !bytes.Equal(*have, data[i]) {
			return false, nil
		}
	}
	return true, nil
}

// settle joins the reload round of s's host and commands.
// keys are the PEM contents written or restored: command output quoting a
// private key among them is withheld from errors.
func (d *Deployer) settle(ctx context.Context, s *session, undo func(context.Context) error, keys []string) error {
	if s.p.TestCommand == "" && s.p.ReloadCommand == "" {
		return nil
	}
	key := d.roundKey(s.c.key, s.p)
	// The round may outlive this call (when ctx ends first): it keeps the
	// connection it runs on, which undo uses too, until it is over.
	s.c.retain()
	gate := deploy.HostGateOf(ctx)
	if gate != nil {
		gate.Yield() // waiting here uses no session: let another deployment to the host start
	}
	done, err := d.rounds.join(ctx, key, member{undo: undo, keys: keys, gate: gate}, func(ctx context.Context, ms []member) error {
		return s.testAndReload(ctx, ms)
	})
	go func() { <-done; s.c.Release() }()
	return err
}

func (s *session) command(cmd string) string {
	if s.p.Sudo {
		return "sudo -n sh -c " + ShellQuote(cmd)
	}
	return cmd
}

// testAndReload runs the round's test and reload once for all members.
func (s *session) testAndReload(ctx context.Context, ms []member) error {
	ep := s.c.ep
	var keys []string
	for _, m := range ms {
		keys = append(keys, m.keys...)
	}
	// run runs a command, withholding output that quotes a private key.
	run := func(cmd string) error {
		_, err := s.c.Run(ctx, s.command(cmd), nil, s.p.commandTimeout, true)
		var ce *CommandError
		if errors.As(err, &ce) && deploy.EchoesKey(ce.Output, keys...) {
			ce.Output = "(output withheld: it quotes a private key)"
		}
		return err
	}
	undoAll := func() error {
		var errs []error
		for _, m := range ms {
			if m.undo != nil {
				errs = append(errs, m.undo(ctx))
			}
		}
		return errors.Join(errs...)
	}
	// again re-tests and reloads after the members' files were restored.
	again := func() error {
		if s.p.TestCommand != "" {
			if err := run(s.p.TestCommand); err != nil {
				return fmt.Errorf("after restoring, TestCommand still fails: %w", err)
			}
		}
		if s.p.ReloadCommand != "" {
			if err := run(s.p.ReloadCommand); err != nil {
				return fmt.Errorf("after restoring, ReloadCommand failed: %w", err)
			}
		}
		return nil
	}
	if s.p.TestCommand != "" {
		if err := run(s.p.TestCommand); err != nil {
			var ce *CommandError
			permanent := errors.As(err, &ce)
			err = fmt.Errorf("ssh: %s: TestCommand %w; the reload was skipped", ep, err)
			if hasUndo(ms) {
				if uerr := undoAll(); uerr != nil {
					err = errors.Join(err, fmt.Errorf("restoring the previous files: %w", uerr))
				} else {
					err = fmt.Errorf("%w and the previous files were restored", err)
					if aerr := again(); aerr != nil {
						err = errors.Join(err, aerr)
					}
				}
			}
			if permanent {
				return deploy.Permanent(err)
			}
			return err
		}
	}
	if s.p.ReloadCommand != "" {
		if err := run(s.p.ReloadCommand); err != nil {
			err = fmt.Errorf("ssh: %s: ReloadCommand %w", ep, err)
			if hasUndo(ms) {
				if uerr := undoAll(); uerr != nil {
					return errors.Join(err, fmt.Errorf("restoring the previous files: %w", uerr))
				}
				err = fmt.Errorf("%w; the previous files were restored", err)
				if aerr := again(); aerr != nil {
					err = errors.Join(err, aerr)
				}
			}
			return err
		}
	}
	return nil
}

func hasUndo(ms []member) bool {
	return slices.ContainsFunc(ms, func(m member) bool { return m.undo != nil })
}
