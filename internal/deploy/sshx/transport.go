// Package sshx is the SSH transport shared by the ssh deployers (sshnginx,
// sshhaproxy, sshfile): credentials, host key pinning, a pool of connections
// reused across workers, remote commands with timeouts, atomic file writes
// over SFTP (or through sudo), and the per-host reload rounds that let many
// resources on one host share a single test and reload.
//
// It is not a deployer by itself: each product package decodes its own
// Config into a Plan and hands it to a Deployer built here.
package sshx

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/egress"
)

const (
	// ConnectTimeout bounds dialing and the SSH handshake.
	ConnectTimeout = 15 * time.Second
	// TransferTimeout bounds one file operation (read, write, rename, remove).
	TransferTimeout = 30 * time.Second
	// IdleClose is how long an unused pooled connection stays open.
	IdleClose = 60 * time.Second
	// maxCommandSessions bounds concurrent exec sessions on one connection,
	// below OpenSSH's default MaxSessions (10); the SFTP session is extra.
	maxCommandSessions = 6
	// maxOutput is how much of a command's output an error quotes.
	maxOutput = 4 << 10
)

// HostKeyPin is a resource's pinned host key: either a whole public key
// (authorized_keys form) or only its SHA-256 fingerprint.
type HostKeyPin struct {
	Fingerprint string        // "SHA256:…", unpadded base64 as ssh-keygen -l prints it
	Key         ssh.PublicKey // nil when only the fingerprint was given
}

// ParseHostKey accepts "ssh-ed25519 AAAA… [comment]" (as in known_hosts
// without the host name, or a .pub file) or "SHA256:…" (ssh-keygen -lf).
func ParseHostKey(s string) (HostKeyPin, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return HostKeyPin{}, errors.New("Config key \"HostKey\" is required: the host's public key (cat /etc/ssh/ssh_host_ed25519_key.pub) or its fingerprint (ssh-keygen -lf …)")
	}
	if fp, ok := strings.CutPrefix(s, "SHA256:"); ok {
		fp = strings.TrimRight(fp, "=")
		if len(fp) != 43 || strings.ContainsAny(fp, " \t\n") {
			return HostKeyPin{}, fmt.Errorf("Config key \"HostKey\" %q is not a SHA256 fingerprint (43 base64 characters after \"SHA256:\")", s)
		}
		return HostKeyPin{Fingerprint: "SHA256:" + fp}, nil
	}
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		return HostKeyPin{}, fmt.Errorf("Config key \"HostKey\" is neither a public key like \"ssh-ed25519 AAAA…\" nor a \"SHA256:…\" fingerprint: %w", err)
	}
	return HostKeyPin{Fingerprint: ssh.FingerprintSHA256(k), Key: k}, nil
}

// HostKeyError is returned when a host presents a key other than the pinned
// one. It is always wrapped with deploy.Permanent.
type HostKeyError struct {
	Addr      string
	Presented string // fingerprint the server presented
	Pinned    string // fingerprint the resource pins
}

func (e *HostKeyError) Error() string {
	return fmt.Sprintf("host key of %s is %s but the resource's HostKey pins %s: refusing to connect; if the host key was legitimately replaced, check the new one out of band and update HostKey",
		e.Addr, e.Presented, e.Pinned)
}

// Credential is an ssh CloudAccess: SecretId is the user, SecretKey a PEM
// private key (detected by "-----BEGIN") or else a password; the access
// Config may carry {"Passphrase": "…"} for an encrypted key.
type Credential struct {
	User       string
	signer     ssh.Signer
	password   string
	identifier string // stable digest of the secret, for pool keys
}

type accessConfig struct {
	Passphrase string
}

// ParseCredential decodes an ssh CloudAccess. Its errors are permanent.
func ParseCredential(a *deploy.Access) (Credential, error) {
	if a == nil {
		return Credential{}, deploy.Permanentf("ssh: the resource has no CloudAccessId; create an ssh CloudAccess (SecretId: user, SecretKey: private key or password)")
	}
	if a.SecretID == "" {
		return Credential{}, deploy.Permanentf("ssh: CloudAccess %d: SecretId (the user name) is empty", a.ID)
	}
	var ac accessConfig
	if err := deploy.DecodeFields(fmt.Sprintf("ssh CloudAccess %d", a.ID), "Config", Access.Config, a.Config, &ac); err != nil {
		return Credential{}, err
	}
	sum := sha256.Sum256([]byte(a.SecretKey + "\x00" + ac.Passphrase))
	c := Credential{User: a.SecretID, identifier: hex.EncodeToString(sum[:8])}
	if strings.Contains(a.SecretKey, "-----BEGIN") {
		var (
			s   ssh.Signer
			err error
		)
		if ac.Passphrase != "" {
			s, err = ssh.ParsePrivateKeyWithPassphrase([]byte(a.SecretKey), []byte(ac.Passphrase))
		} else {
			s, err = ssh.ParsePrivateKey([]byte(a.SecretKey))
		}
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			return Credential{}, deploy.Permanentf("ssh: CloudAccess %d: the private key is encrypted; set Passphrase in the access Config", a.ID)
		}
		if err != nil {
			return Credential{}, deploy.Permanentf("ssh: CloudAccess %d: private key: %w", a.ID, err)
		}
		c.signer = s
		return c, nil
	}
	if ac.Passphrase != "" {
		return Credential{}, deploy.Permanentf("ssh: CloudAccess %d: Passphrase is set but SecretKey is not a PEM private key", a.ID)
	}
	c.password = a.SecretKey
	return c, nil
}

func (c Credential) methods() []ssh.AuthMethod {
	if c.signer != nil {
		return []ssh.AuthMethod{ssh.PublicKeys(c.signer)}
	}
	pw := c.password
	return []ssh.AuthMethod{ssh.Password(pw), ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
		ans := make([]string, len(qs))
		for i := range ans {
			ans[i] = pw
		}
		return ans, nil
	})}
}

// Endpoint is where to connect and how to trust it.
type Endpoint struct {
	Addr string // host:port
	Pin  HostKeyPin
	Cred Credential
	// Dialer connects under the egress policy of the resource's account;
	// nil: the default policy as the root account.
	Dialer *egress.AccountDialer
}

// key names a pooled connection: account, user, address, credential and
// pin, so a resource with another pin never reuses a connection it would
// have refused, and an account never reuses one its policy would refuse.
func (e Endpoint) key() string {
	return strconv.FormatInt(e.dialer().Account(), 10) + " " + e.Cred.User + "@" + e.Addr + " " + e.Cred.identifier + " " + e.Pin.Fingerprint
}

func (e Endpoint) dialer() *egress.AccountDialer {
	if e.Dialer == nil {
		return (*egress.Dialer)(nil).For(0)
	}
	return e.Dialer
}

// String is user@host:port, for errors.
func (e Endpoint) String() string { return e.Cred.User + "@" + e.Addr }

// Pool shares SSH connections among workers: one per Endpoint, closed after
// IdleClose without users. It is safe for concurrent use.
type Pool struct {
	mu    sync.Mutex
	conns map[string]*Conn
	idle  time.Duration
}

// NewPool returns an empty pool closing connections idle for idle.
func NewPool(idle time.Duration) *Pool {
	return &Pool{conns: map[string]*Conn{}, idle: idle}
}

// Conn is a pooled SSH connection. Release it when done.
type Conn struct {
	pool *Pool
	key  string
	ep   Endpoint

	ready chan struct{} // closed once dialing finished
	err   error         // dial error, set before ready closes

	client   *ssh.Client
	sessions chan struct{}
	sftpOnce sync.Once
	sftp     *sftp.Client
	sftpErr  error

	// guarded by pool.mu
	refs  int
	dead  bool
	timer *time.Timer
}

// Get returns a connection to ep, dialing when none is pooled or the pooled
// one has died. Errors: *HostKeyError and authentication failures are
// permanent; anything else (refused, timeout) is transient.
func (p *Pool) Get(ctx context.Context, ep Endpoint) (*Conn, error) {
	k := ep.key()
	p.mu.Lock()
	c, ok := p.conns[k]
	if ok && !c.dead {
		c.refs++
		if c.timer != nil {
			c.timer.Stop()
			c.timer = nil
		}
		p.mu.Unlock()
		select {
		case <-c.ready:
		case <-ctx.Done():
			c.Release()
			return nil, ctx.Err()
		}
		if c.err != nil {
			c.Release()
			return nil, c.err
		}
		return c, nil
	}
	c = &Conn{pool: p, key: k, ep: ep, ready: make(chan struct{}), refs: 1, sessions: make(chan struct{}, maxCommandSessions)}
	p.conns[k] = c
	p.mu.Unlock()

	c.client, c.err = dial(ctx, ep)
	if c.err != nil {
		p.mu.Lock()
		c.dead = true
		if p.conns[k] == c {
			delete(p.conns, k)
		}
		p.mu.Unlock()
	} else {
		go func() {
			c.client.Wait()
			c.markDead()
		}()
	}
	close(c.ready)
	if c.err != nil {
		c.Release()
		return nil, c.err
	}
	return c, nil
}

func dial(ctx context.Context, ep Endpoint) (*ssh.Client, error) {
	var mismatch *HostKeyError
	cfg := &ssh.ClientConfig{
		User:    ep.Cred.User,
		Auth:    ep.Cred.methods(),
		Timeout: ConnectTimeout,
		HostKeyCallback: func(_ string, _ net.Addr, key ssh.PublicKey) error {
			got := ssh.FingerprintSHA256(key)
			if got != ep.Pin.Fingerprint {
				mismatch = &HostKeyError{Addr: ep.Addr, Presented: got, Pinned: ep.Pin.Fingerprint}
				return mismatch
			}
			return nil
		},
	}
	if k := ep.Pin.Key; k != nil {
		// Ask for the pinned key's algorithm, so a host with several host
		// keys presents the one that is pinned.
		if k.Type() == ssh.KeyAlgoRSA {
			cfg.HostKeyAlgorithms = []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
		} else {
			cfg.HostKeyAlgorithms = []string{k.Type()}
		}
	}
	dctx, cancel := context.WithTimeout(ctx, ConnectTimeout)
	defer cancel()
	nc, err := ep.dialer().DialContext(dctx, "tcp", ep.Addr)
	if egress.IsRefused(err) {
		return nil, deploy.Permanentf("ssh: connect %s: %w", ep, err)
	}
	if err != nil {
		return nil, fmt.Errorf("ssh: connect %s: %w", ep, err)
	}
	// The handshake honours the context through the deadline.
	if dl, ok := dctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	stop := context.AfterFunc(dctx, func() { nc.SetDeadline(time.Now()) })
	sc, chans, reqs, err := ssh.NewClientConn(nc, ep.Addr, cfg)
	stop()
	if err != nil {
		nc.Close()
		if mismatch != nil {
			return nil, deploy.Permanent(fmt.Errorf("ssh: %w", mismatch))
		}
		if strings.Contains(err.Error(), "unable to authenticate") {
			return nil, deploy.Permanentf("ssh: %s: authentication failed (check the CloudAccess user and key or password, and the host's authorized_keys): %w", ep, err)
		}
		return nil, fmt.Errorf("ssh: handshake with %s: %w", ep, err)
	}
	nc.SetDeadline(time.Time{})
	return ssh.NewClient(sc, chans, reqs), nil
}

func (c *Conn) markDead() {
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	c.dead = true
	if p.conns[c.key] == c {
		delete(p.conns, c.key)
	}
}

// kill closes the connection now (after a timeout left it in an unknown
// state); current users get errors, new ones dial again.
func (c *Conn) kill() {
	c.markDead()
	if c.client != nil {
		c.client.Close()
	}
}

// retain takes one more reference to a connection the caller already holds;
// Release it too.
func (c *Conn) retain() {
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	c.refs++
}

// Release gives the connection back; the last release starts the idle timer.
func (c *Conn) Release() {
	p := c.pool
	p.mu.Lock()
	defer p.mu.Unlock()
	c.refs--
	if c.refs > 0 {
		return
	}
	if c.dead {
		if c.client != nil {
			go c.client.Close()
		}
		return
	}
	c.timer = time.AfterFunc(p.idle, func() {
		p.mu.Lock()
		if c.refs > 0 || c.timer == nil {
			p.mu.Unlock()
			return
		}
		c.dead = true
		if p.conns[c.key] == c {
			delete(p.conns, c.key)
		}
		p.mu.Unlock()
		c.client.Close()
	})
}

// Endpoint returns what the connection was made to.
func (c *Conn) Endpoint() Endpoint { return c.ep }

// CommandError is a remote command that ran and failed (non-zero exit).
type CommandError struct {
	Command string
	Status  int
	Output  string // combined stdout and stderr, at most 4 KiB
}

func (e *CommandError) Error() string {
	out := strings.TrimSpace(e.Output)
	if out == "" {
		out = "no output"
	}
	return fmt.Sprintf("%q exited with status %d: %s", e.Command, e.Status, out)
}

// Run runs command with the remote user's shell, feeding stdin, and returns
// its stdout. A non-zero exit is a *CommandError quoting stderr (or, when
// combined is set, stdout and stderr interleaved). The command is abandoned
// (its session closed) when timeout or ctx ends.
func (c *Conn) Run(ctx context.Context, command string, stdin []byte, timeout time.Duration, combined bool) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	select {
	case c.sessions <- struct{}{}:
		defer func() { <-c.sessions }()
	case <-ctx.Done():
		return nil, fmt.Errorf("ssh: %s: run %q: waiting for a session: %w", c.ep, command, ctx.Err())
	}
	s, err := c.client.NewSession()
	if err != nil {
		return nil, fmt.Errorf("ssh: %s: open session: %w", c.ep, err)
	}
	defer s.Close()
	var stdout, stderr limitedBuffer
	stdout.max, stderr.max = 4<<20, maxOutput
	s.Stdout, s.Stderr = &stdout, &stderr
	if combined {
		stdout.max = maxOutput
		s.Stderr = &stdout
	}
	if stdin != nil {
		s.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(command) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		s.Signal(ssh.SIGKILL)
		s.Close()
		return nil, fmt.Errorf("ssh: %s: %q did not finish within %v: %w", c.ep, command, timeout, ctx.Err())
	}
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		out := stderr.String()
		if combined {
			out = stdout.String()
		}
		return stdout.Bytes(), &CommandError{Command: command, Status: exit.ExitStatus(), Output: out}
	}
	if err != nil {
		return nil, fmt.Errorf("ssh: %s: run %q: %w", c.ep, command, err)
	}
	return stdout.Bytes(), nil
}

// SFTP returns the connection's SFTP client, started on first use.
func (c *Conn) SFTP() (*sftp.Client, error) {
	c.sftpOnce.Do(func() {
		c.sftp, c.sftpErr = sftp.NewClient(c.client)
		if c.sftpErr != nil {
			c.sftpErr = fmt.Errorf("ssh: %s: start sftp (is the sftp subsystem enabled in sshd_config?): %w", c.ep, c.sftpErr)
		}
	})
	return c.sftp, c.sftpErr
}

// transfer runs fn with TransferTimeout; when it times out, the connection
// is killed so fn's blocked SFTP call returns.
func (c *Conn) transfer(ctx context.Context, what string, fn func() error) error {
	ctx, cancel := context.WithTimeout(ctx, TransferTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		c.kill()
		return fmt.Errorf("ssh: %s: %s: %w", c.ep, what, ctx.Err())
	}
}

type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if room := b.max - b.Len(); room < len(p) {
		p = p[:max(room, 0)]
	}
	b.Buffer.Write(p)
	return n, nil
}

// ShellQuote quotes s for a POSIX shell.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// marshal is json.Marshal for values that cannot fail.
func marshal(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}
