// Package hosts starts real servers on loopback for tests: OpenSSH's sshd
// letting root in with a generated key, nginx and HAProxy serving TLS from
// files in a temporary directory. Each stops when its test ends. A missing
// program or privilege goes through testutil.Missing: skipped locally,
// failed in CI.
//
// It is for tests only, and it configures nothing on the machine beyond the
// test's temporary directories (and sshd's /run/sshd, which sshd insists on).
package hosts

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// skipShort skips tests that start real servers under go test -short.
func skipShort(t testing.TB) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts real servers; skipped under -short")
	}
}

// NeedBinary skips (locally) or fails (CI) a test when a program is missing.
func NeedBinary(t testing.TB, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		testutil.Missing(t, path, "apt-get install -y "+pkg)
	}
}

// SSHD is an OpenSSH server on a loopback port that lets root in with a
// generated ed25519 key.
type SSHD struct {
	Addr      string
	Port      int
	HostKey   string // authorized_keys form of the host's key
	HostFP    string // its SHA256 fingerprint
	ClientKey string // PEM private key allowed to log in as root
	Dir       string // sshd's temporary directory (config, keys, log)
}

// StartSSHD runs sshd -D with a throwaway config, host key and client key.
// With fakeSudo, sessions find first on their PATH a "sudo" that drops -n
// and runs its arguments (we already are root), logging each call to
// Dir/sudo.log, so the Sudo code path runs without sudo installed.
func StartSSHD(t testing.TB, fakeSudo bool) *SSHD {
	t.Helper()
	skipShort(t)
	NeedBinary(t, "/usr/sbin/sshd", "openssh-server")
	NeedBinary(t, "/usr/bin/ssh-keygen", "openssh-client")
	if os.Geteuid() != 0 {
		testutil.Missing(t, "root (sshd must accept a root login for these tests)", "run the tests as root, as CI does")
	}
	dir := t.TempDir()
	hostKeyFile := filepath.Join(dir, "host_ed25519")
	if out, err := exec.Command("/usr/bin/ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", hostKeyFile).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	pub, err := os.ReadFile(hostKeyFile + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	hk, _, _, _, err := ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "certfleet test")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	authorized := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(authorized, ssh.MarshalAuthorizedKey(signer.PublicKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // sshd refuses to start without its privilege separation directory
	addr := testutil.FreeAddr(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	var extra string
	if fakeSudo {
		bin := filepath.Join(dir, "bin")
		os.Mkdir(bin, 0o755)
		shim := "#!/bin/sh\necho \"$*\" >> " + filepath.Join(dir, "sudo.log") + "\n[ \"$1\" = -n ] && shift\nexec \"$@\"\n"
		if err := os.WriteFile(filepath.Join(bin, "sudo"), []byte(shim), 0o755); err != nil {
			t.Fatal(err)
		}
		extra = "SetEnv PATH=" + bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
	}
	cfg := filepath.Join(dir, "sshd_config")
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
Subsystem sftp internal-sftp
MaxSessions 20
MaxStartups 100:30:200
LogLevel ERROR
%s`, port, hostKeyFile, authorized, filepath.Join(dir, "sshd.pid"), extra)
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/usr/sbin/sshd", "-D", "-e", "-f", cfg)
	logFile, err := os.Create(filepath.Join(dir, "sshd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		logFile.Close()
	})
	WaitListening(t, addr, exited, filepath.Join(dir, "sshd.log"))
	return &SSHD{Addr: addr, Port: port, HostKey: strings.TrimSpace(string(pub)), HostFP: ssh.FingerprintSHA256(hk),
		ClientKey: string(pem.EncodeToMemory(block)), Dir: dir}
}

// WaitListening waits up to 15 s until addr accepts TCP connections, failing
// the test (with the log at logPath) if it does not or exited closes first.
func WaitListening(t testing.TB, addr string, exited <-chan struct{}, logPath string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("server for %s exited during start:\n%s", addr, log)
		case <-time.After(50 * time.Millisecond):
		}
	}
	log, _ := os.ReadFile(logPath)
	t.Fatalf("nothing listens on %s:\n%s", addr, log)
}

// countLines counts the lines of path equal to line; 0 when it does not exist.
func countLines(t testing.TB, path, line string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), line+"\n")
}

// Nginx is an nginx master on a loopback TLS port with one server block per
// site, each with its own certificate files under Dir/tls.
type Nginx struct {
	Dir, Conf, Addr string
	ReloadLog       string
	Sites           []string
	Initial         map[string]certstest.Chain // site → the certificate it starts with
}

// CertPath and KeyPath are a site's files, named in its server block.
func (n *Nginx) CertPath(site string) string { return filepath.Join(n.Dir, "tls", site+".pem") }
func (n *Nginx) KeyPath(site string) string  { return filepath.Join(n.Dir, "tls", site+".key") }

// TestCommand and ReloadCommand are the resource commands for this nginx;
// reloads are counted, one line each, in ReloadLog.
func (n *Nginx) TestCommand() string { return "/usr/sbin/nginx -q -t -c " + n.Conf }
func (n *Nginx) ReloadCommand() string {
	return "echo reload >> " + n.ReloadLog + " && /usr/sbin/nginx -s reload -c " + n.Conf
}

// Reloads counts the reloads ReloadCommand has made.
func (n *Nginx) Reloads(t testing.TB) int { t.Helper(); return countLines(t, n.ReloadLog, "reload") }

// StartNginx starts nginx (as a daemon with its pid file in a temp dir) with
// a TLS server block for each site, each serving a fresh self-signed
// certificate.
func StartNginx(t testing.TB, sites ...string) *Nginx {
	t.Helper()
	skipShort(t)
	NeedBinary(t, "/usr/sbin/nginx", "nginx")
	dir := t.TempDir()
	n := &Nginx{Dir: dir, Conf: filepath.Join(dir, "nginx.conf"), Addr: testutil.FreeAddr(t), ReloadLog: filepath.Join(dir, "reloads.log"),
		Sites: sites, Initial: map[string]certstest.Chain{}}
	for _, sub := range []string{"tls", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var servers strings.Builder
	for _, site := range sites {
		ch := certstest.New(t, certstest.Options{DNSNames: []string{site}})
		n.Initial[site] = ch
		if err := os.WriteFile(n.CertPath(site), []byte(ch.CertPEM), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.KeyPath(site), []byte(ch.KeyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&servers, "    server {\n        listen %s ssl;\n        server_name %s;\n        ssl_certificate %s;\n        ssl_certificate_key %s;\n        return 200 \"ok\\n\";\n    }\n",
			n.Addr, site, n.CertPath(site), n.KeyPath(site))
	}
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
worker_processes 1;
events { worker_connections 256; }
http {
    access_log %[1]s/logs/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server_names_hash_bucket_size 128;
%[2]s}
`, dir, servers.String())
	if err := os.WriteFile(n.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/nginx", "-e", filepath.Join(dir, "logs", "error.log"), "-c", n.Conf).CombinedOutput(); err != nil {
		t.Fatalf("start nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() { StopByPidFile(filepath.Join(dir, "nginx.pid"), syscall.SIGQUIT) })
	WaitListening(t, n.Addr, nil, filepath.Join(dir, "logs", "error.log"))
	return n
}

// StopByPidFile signals the process named in a pid file and waits up to 5 s
// for it to go, then kills it.
func StopByPidFile(pidFile string, sig syscall.Signal) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, sig)
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// HAProxy is HAProxy in master-worker mode (-W -D, pid file in a temp dir)
// with one TLS bind whose "crt" is Pem. Reload: kill -USR2 the master, which
// re-reads the configuration and certificates and replaces its workers.
type HAProxy struct {
	Dir, Cfg, Pem, PidFile, Addr string
	ReloadLog                    string
	Initial                      certstest.Chain
}

// TestCommand and ReloadCommand are the resource commands for this HAProxy;
// reloads are counted, one line each, in ReloadLog.
func (h *HAProxy) TestCommand() string { return "/usr/sbin/haproxy -q -c -f " + h.Cfg }
func (h *HAProxy) ReloadCommand() string {
	return "echo reload >> " + h.ReloadLog + " && kill -USR2 $(cat " + h.PidFile + ")"
}

// Reloads counts the reloads ReloadCommand has made.
func (h *HAProxy) Reloads(t testing.TB) int { t.Helper(); return countLines(t, h.ReloadLog, "reload") }

// StartHAProxy starts HAProxy serving a fresh certificate for site.
func StartHAProxy(t testing.TB, site string) *HAProxy {
	t.Helper()
	skipShort(t)
	NeedBinary(t, "/usr/sbin/haproxy", "haproxy")
	dir := t.TempDir()
	h := &HAProxy{Dir: dir, Cfg: filepath.Join(dir, "haproxy.cfg"), Pem: filepath.Join(dir, "site.pem"),
		PidFile: filepath.Join(dir, "haproxy.pid"), Addr: testutil.FreeAddr(t), ReloadLog: filepath.Join(dir, "reloads.log")}
	h.Initial = certstest.New(t, certstest.Options{DNSNames: []string{site}})
	if err := os.WriteFile(h.Pem, []byte(h.Initial.CertPEM+h.Initial.KeyPEM), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf(`global
    pidfile %s
defaults
    mode http
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend tls
    bind %s ssl crt %s
    http-request return status 200 content-type text/plain string ok
`, h.PidFile, h.Addr, h.Pem)
	if err := os.WriteFile(h.Cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/haproxy", "-W", "-D", "-q", "-f", h.Cfg, "-p", h.PidFile).CombinedOutput(); err != nil {
		t.Fatalf("start haproxy: %v\n%s", err, out)
	}
	t.Cleanup(func() { StopByPidFile(h.PidFile, syscall.SIGTERM) })
	WaitListening(t, h.Addr, nil, h.Cfg)
	return h
}
