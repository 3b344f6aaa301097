package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/certfleet/certfleet/bench/internal/benchkit"

	"golang.org/x/crypto/ssh"
)

// cert is a self-signed certificate for *.example.test and its key.
type cert struct {
	certPEM, keyPEM string
	sha             [32]byte // SHA-256 of the leaf's DER
}

func newCert(name string) (cert, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return cert{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return cert{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "*.example.test", Organization: []string{"certfleet bench " + name}},
		DNSNames:              []string{"*.example.test"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return cert{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return cert{}, err
	}
	return cert{
		certPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})),
		keyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder})),
		sha:     sha256.Sum256(der),
	}, nil
}

func freeAddr() (string, int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", 0, err
	}
	defer ln.Close()
	return ln.Addr().String(), ln.Addr().(*net.TCPAddr).Port, nil
}

// sshHost is an OpenSSH server on a loopback port letting root in with a
// generated ed25519 key.
type sshHost struct {
	addr       string
	port       int
	hostKey    string // authorized_keys form of the host key
	clientKey  string // OpenSSH PEM of the client's private key
	keyFile    string // the same, in a 0600 file for ssh -i
	knownHosts string // known_hosts pinning the host key for [127.0.0.1]:port
}

// sshArgs are the ssh(1) options every command-line ssh here uses: only
// this key, only the pinned host key, no user or system configuration.
func (h *sshHost) sshArgs() []string {
	return []string{"-F", "/dev/null", "-i", h.keyFile, "-p", strconv.Itoa(h.port),
		"-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
		"-o", "UserKnownHostsFile=" + h.knownHosts, "-o", "GlobalKnownHostsFile=/dev/null"}
}

func startSSHD(ctx context.Context, dir string, sftpLog bool) (*sshHost, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	if out, err := exec.CommandContext(ctx, "/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKeyFile).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("ssh-keygen: %w\n%s", err, out)
	}
	pub, err := os.ReadFile(hostKeyFile + ".pub")
	if err != nil {
		return nil, err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	block, err := ssh.MarshalPrivateKey(priv, "certfleet bench")
	if err != nil {
		return nil, err
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, err
	}
	addr, port, err := freeAddr()
	if err != nil {
		return nil, err
	}
	h := &sshHost{addr: addr, port: port, hostKey: strings.TrimSpace(string(pub)), clientKey: string(pem.EncodeToMemory(block)),
		keyFile: filepath.Join(dir, "client_ed25519"), knownHosts: filepath.Join(dir, "known_hosts")}
	fields := strings.Fields(h.hostKey)
	files := map[string]string{
		h.keyFile:                             h.clientKey,
		filepath.Join(dir, "authorized_keys"): string(ssh.MarshalAuthorizedKey(signer.PublicKey())),
		h.knownHosts:                          fmt.Sprintf("[127.0.0.1]:%d %s %s\n", port, fields[0], fields[1]),
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	// sshd refuses to start without its privilege separation directory.
	os.MkdirAll("/run/sshd", 0o755)
	cfg := filepath.Join(dir, "sshd_config")
	sftp, level := "internal-sftp", "ERROR"
	if sftpLog {
		sftp, level = "internal-sftp -l VERBOSE", "VERBOSE"
	}
	conf := fmt.Sprintf(`Port %d
ListenAddress 127.0.0.1
HostKey %s
AuthorizedKeysFile %s
PidFile %s
StrictModes no
UsePAM no
PermitRootLogin yes
PasswordAuthentication no
KbdInteractiveAuthentication no
Subsystem sftp %s
MaxSessions 20
MaxStartups 100:30:200
LogLevel %s
`, port, hostKeyFile, filepath.Join(dir, "authorized_keys"), filepath.Join(dir, "sshd.pid"), sftp, level)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "sshd.log")
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, so a Ctrl-C to the benchmark reaches sshd only
	// through the cleanup.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start sshd: %w", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); logf.Close(); close(exited) }()
	cleanups.add(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	if err := waitListening(ctx, addr, exited, logPath); err != nil {
		return nil, err
	}
	return h, nil
}

func waitListening(ctx context.Context, addr string, exited <-chan struct{}, logPath string) error {
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("server for %s exited during start:\n%s", addr, log)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(logPath)
	return fmt.Errorf("nothing listens on %s:\n%s", addr, log)
}

// nginxHost is an nginx master (daemon, pid file in its directory) with one
// TLS server block per site on one loopback port, each with its own
// certificate and key file under dir/tls.
type nginxHost struct {
	dir, conf, addr, tlsDir string
	sites                   []string
}

func (n *nginxHost) certPath(site string) string { return filepath.Join(n.tlsDir, site+".pem") }
func (n *nginxHost) keyPath(site string) string  { return filepath.Join(n.tlsDir, site+".key") }
func (n *nginxHost) testCommand() string         { return "nginx -t -c " + n.conf }
func (n *nginxHost) reloadCommand() string       { return "nginx -s reload -c " + n.conf }
func (n *nginxHost) pidFile() string             { return filepath.Join(n.dir, "nginx.pid") }

func startNginx(ctx context.Context, dir string, sites []string, initial cert) (*nginxHost, error) {
	addr, _, err := freeAddr()
	if err != nil {
		return nil, err
	}
	n := &nginxHost{dir: dir, conf: filepath.Join(dir, "nginx.conf"), addr: addr, tlsDir: filepath.Join(dir, "tls"), sites: sites}
	for _, sub := range []string{"tls", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	if err := benchkit.WriteNginxSites(dir, n.conf, addr, sites, n.certPath, n.keyPath, initial.certPEM, initial.keyPEM); err != nil {
		return nil, err
	}
	if out, err := exec.CommandContext(ctx, "/usr/sbin/nginx", "-e", filepath.Join(dir, "logs", "error.log"), "-c", n.conf).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("start nginx: %w\n%s", err, out)
	}
	cleanups.add(func() { benchkit.StopByPidFile(n.pidFile(), syscall.SIGQUIT) })
	if err := waitListening(ctx, addr, nil, filepath.Join(dir, "logs", "error.log")); err != nil {
		return nil, err
	}
	return n, nil
}

// verify checks, with one TLS handshake per vhost (SNI), that every vhost
// serves c, waiting up to 15 s for nginx's new workers to take over.
func (n *nginxHost) verify(ctx context.Context, c cert) error {
	deadline := time.Now().Add(15 * time.Second)
	for _, site := range n.sites {
		for {
			got, err := benchkit.Served(n.addr, site)
			if err == nil && got == c.sha {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("vhost %s does not serve the deployed certificate (err %v)", site, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	return nil
}

// nginxMasterPID reads the master's pid.
func (n *nginxHost) masterPID() (int, error) {
	b, err := os.ReadFile(n.pidFile())
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// newestWorkerStart is the start time of the youngest child of nginx's
// master (after a reload: the new worker), to /proc's clock-tick precision.
func (n *nginxHost) newestWorkerStart() (time.Time, error) {
	master, err := n.masterPID()
	if err != nil {
		return time.Time{}, err
	}
	boot, err := bootTime()
	if err != nil {
		return time.Time{}, err
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return time.Time{}, err
	}
	var starts []float64
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the ")" that ends the command name: state ppid … starttime (22nd field overall).
		i := bytes.LastIndexByte(b, ')')
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 20 || f[1] != strconv.Itoa(master) || pid == master {
			continue
		}
		ticks, _ := strconv.ParseFloat(f[19], 64)
		starts = append(starts, ticks)
	}
	if len(starts) == 0 {
		return time.Time{}, fmt.Errorf("no nginx worker under master %d", master)
	}
	const hz = 100 // USER_HZ on Linux
	t := slices.Max(starts) / hz
	return boot.Add(time.Duration(t * float64(time.Second))), nil
}

// bootTime is when the machine booted, from /proc/uptime (10 ms precision;
// /proc/stat's btime is whole seconds).
func bootTime() (time.Time, error) {
	now := time.Now()
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		return time.Time{}, err
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return time.Time{}, fmt.Errorf("empty /proc/uptime")
	}
	up, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return time.Time{}, err
	}
	return now.Add(-time.Duration(up * float64(time.Second))), nil
}

// probeResult is what the floor's parts cost, each over its own ssh.
type probeResult struct {
	sshTrue, nginxTest, nginxReload time.Duration // over a new ssh connection each
	localTest, localReload          time.Duration // run directly, no ssh
}

func probeSSH(ctx context.Context, h *sshHost, n *nginxHost) (probeResult, error) {
	var p probeResult
	for _, x := range []struct {
		cmd string
		dst *time.Duration
	}{{"true", &p.sshTrue}, {n.testCommand(), &p.nginxTest}, {n.reloadCommand(), &p.nginxReload}} {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			cmd := exec.CommandContext(ctx, "/usr/bin/ssh", append(h.sshArgs(), "root@127.0.0.1", x.cmd)...)
			if out, err := cmd.CombinedOutput(); err != nil {
				return p, fmt.Errorf("ssh %q: %w\n%s", x.cmd, err, out)
			}
			ds = append(ds, time.Since(start))
			time.Sleep(200 * time.Millisecond) // let a reload settle
		}
		*x.dst = result{times: ds}.median()
	}
	for _, x := range []struct {
		cmd string
		dst *time.Duration
	}{{n.testCommand(), &p.localTest}, {n.reloadCommand(), &p.localReload}} {
		var ds []time.Duration
		for range 5 {
			start := time.Now()
			if out, err := exec.CommandContext(ctx, "sh", "-c", x.cmd).CombinedOutput(); err != nil {
				return p, fmt.Errorf("%q: %w\n%s", x.cmd, err, out)
			}
			ds = append(ds, time.Since(start))
			time.Sleep(200 * time.Millisecond)
		}
		*x.dst = result{times: ds}.median()
	}
	return p, nil
}
