package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
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

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"
	"golang.org/x/crypto/ssh"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// needBinary skips (locally) or fails (CI) a test when a program is missing.
func needBinary(t *testing.T, path, pkg string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		testutil.Missing(t, path, "apt-get install -y "+pkg)
	}
}

// sshHost is an OpenSSH server on a loopback port that lets root in with a
// generated ed25519 key.
type sshHost struct {
	addr      string
	port      int
	hostKey   string // authorized_keys form of the host's key
	hostFP    string // its SHA256 fingerprint
	clientKey string // PEM private key allowed to log in as root
	dir       string
}

// startSSHD runs sshd -D with a throwaway config, host key and client key.
func startSSHD(t *testing.T) *sshHost { t.Helper(); return startSSHDWith(t, false) }

// startSSHDWith is startSSHD; with fakeSudo, sessions find first on their
// PATH a "sudo" that drops -n and runs its arguments (we already are root),
// so the Sudo code path runs without sudo installed or configured.
func startSSHDWith(t *testing.T, fakeSudo bool) *sshHost {
	t.Helper()
	skipShort(t)
	needBinary(t, "/usr/sbin/sshd", "openssh-server")
	needBinary(t, "/usr/bin/ssh-keygen", "openssh-client")
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
	block, err := ssh.MarshalPrivateKey(priv, "certfleet e2e")
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
	// sshd refuses to start without its privilege separation directory.
	os.MkdirAll("/run/sshd", 0o755)
	addr := freeAddr(t)
	_, portStr, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portStr)
	cfg := filepath.Join(dir, "sshd_config")
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
	waitListening(t, addr, exited, filepath.Join(dir, "sshd.log"))
	return &sshHost{addr: addr, port: port, hostKey: strings.TrimSpace(string(pub)), hostFP: ssh.FingerprintSHA256(hk),
		clientKey: string(pem.EncodeToMemory(block)), dir: dir}
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, exited <-chan struct{}, logPath string) {
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

// sshAccess creates the ssh CloudAccess that logs in as root with h's client key.
func (s *server) sshAccess(h *sshHost) int64 {
	s.t.Helper()
	return idOf(s.t, s.mustOwn("CreateCloudAccess", map[string]string{"CloudName": "ssh", "Name": "root@" + h.addr,
		"SecretId": "root", "SecretKey": h.clientKey}), "AccessId")
}

// sshResource creates an ssh resource of product with config (Host, Port and
// HostKey are filled in from h unless config sets them).
func (s *server) sshResource(h *sshHost, access int64, product, domain string, config map[string]any) int64 {
	s.t.Helper()
	id, err := s.trySSHResource(h, access, product, domain, config)
	if err != nil {
		s.t.Fatalf("create %s resource %s: %v", product, domain, err)
	}
	return id
}

func (s *server) trySSHResource(h *sshHost, access int64, product, domain string, config map[string]any) (int64, error) {
	s.t.Helper()
	c := map[string]any{"Host": "127.0.0.1", "Port": h.port, "HostKey": h.hostKey}
	for k, v := range config {
		c[k] = v
	}
	body, err := s.callOwn("CreateCloudResource", map[string]string{"CloudName": "ssh", "CloudProduct": product,
		"Domain": domain, "Name": domain, "CloudAccessId": fmt.Sprint(access), "Config": jsonConfig(c)})
	if err != nil {
		return 0, err
	}
	return idOf(s.t, body, "Id"), nil
}

// sshWorker is a worker as ListWorkerResource shows it, with certfleet's
// additions the SDK drops (ErrorMessage, Attempts).
type sshWorker struct {
	ID           int64 `json:"Id"`
	ResourceID   int64 `json:"ResourceId"`
	Status       string
	ErrorMessage string
	Attempts     int
}

func (s *server) sshWorkers(jobID int64) []sshWorker {
	s.t.Helper()
	body := s.mustOwn("ListWorkerResource", map[string]string{"JobId": fmt.Sprint(jobID), "ShowSize": "1000"})
	b, _ := json.Marshal(body["Data"])
	var out []sshWorker
	if err := json.Unmarshal(b, &out); err != nil {
		s.t.Fatalf("decode workers: %v (%s)", err, b)
	}
	return out
}

// runSSHJob creates a job deploying certID to resources, starts it and
// waits for it to end; it returns the job's final status and its workers.
func (s *server) runSSHJob(c *cas.Client, certID int64, timeout time.Duration, resources ...int64) (int64, string, []sshWorker) {
	s.t.Helper()
	job, err := c.CreateDeploymentJob(&cas.CreateDeploymentJobRequest{Name: tea.String(fmt.Sprintf("ssh-%d", time.Now().UnixNano())),
		JobType: tea.String("user"), CertIds: tea.String(joinIDs(certID)), ResourceIds: tea.String(joinIDs(resources...)),
		ContactIds: tea.String(joinIDs(s.contact()))})
	if err != nil {
		s.t.Fatalf("create job: %v", err)
	}
	jobID := tea.Int64Value(job.Body.JobId)
	if _, err := c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String("pending")}); err != nil {
		s.t.Fatalf("start job %d: %v", jobID, err)
	}
	st := s.waitJob(c, jobID, timeout, "success", "error")
	return jobID, st, s.sshWorkers(jobID)
}

// sshRollback rolls back a worker and waits for the rollback to end.
func (s *server) sshRollback(c *cas.Client, jobID, workerID int64) sshWorker {
	s.t.Helper()
	if _, err := c.UpdateWorkerResourceStatus(&cas.UpdateWorkerResourceStatusRequest{JobId: tea.Int64(jobID), WorkerId: tea.Int64(workerID),
		Status: tea.String("rollback")}); err != nil {
		s.t.Fatalf("roll back worker %d: %v", workerID, err)
	}
	var w sshWorker
	waitFor(s.t, 30*time.Second, fmt.Sprintf("worker %d to end its rollback", workerID), func() (bool, error) {
		for _, x := range s.sshWorkers(jobID) {
			if x.ID == workerID {
				w = x
			}
		}
		return w.Status == "rollback_success" || w.Status == "rollback_error", nil
	})
	return w
}

// leafSHA is the upper-case hex SHA-256 of a PEM's first certificate.
func leafSHA(t *testing.T, certPEM string) string {
	t.Helper()
	b, _ := pem.Decode([]byte(certPEM))
	if b == nil {
		t.Fatal("no PEM certificate")
	}
	sum := sha256.Sum256(b.Bytes)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// served returns the SHA-256 of the leaf addr presents for serverName.
func served(addr, serverName string) (string, error) {
	d := &net.Dialer{Timeout: 2 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{ServerName: serverName, InsecureSkipVerify: true})
	if err != nil {
		return "", err
	}
	defer c.Close()
	certs := c.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		return "", fmt.Errorf("no certificate")
	}
	return certSHA(certs[0]), nil
}

func certSHA(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// waitServed polls until addr serves the certificate with SHA-256 want for serverName.
func waitServed(t *testing.T, addr, serverName, want string) {
	t.Helper()
	// nginx reloads asynchronously and says nothing when its new workers
	// serve: look until they do.
	var last string
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("%s (SNI %s) to serve %s", addr, serverName, want), func() (bool, error) {
		got, err := served(addr, serverName)
		if err == nil && got == want {
			return true, nil
		}
		if now := fmt.Sprintf("serves %s (err %v)", got, err); now != last {
			t.Logf("%s (SNI %s) %s", addr, serverName, now)
			last = now
		}
		return false, nil
	})
}

// nginxHost is an nginx master on a loopback TLS port with one server block
// per site, each with its own certificate files under dir/tls.
type nginxHost struct {
	dir, conf, addr string
	reloadLog       string
	sites           []string
	initial         map[string]certstest.Chain // site → the certificate it starts with
}

func (n *nginxHost) certPath(site string) string { return filepath.Join(n.dir, "tls", site+".pem") }
func (n *nginxHost) keyPath(site string) string  { return filepath.Join(n.dir, "tls", site+".key") }

// testCommand and reloadCommand are the resource commands for this nginx;
// reloads are counted, one line each, in reloadLog.
func (n *nginxHost) testCommand() string { return "/usr/sbin/nginx -q -t -c " + n.conf }
func (n *nginxHost) reloadCommand() string {
	return "echo reload >> " + n.reloadLog + " && /usr/sbin/nginx -s reload -c " + n.conf
}

func (n *nginxHost) reloads(t *testing.T) int {
	b, err := os.ReadFile(n.reloadLog)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "reload\n")
}

// startNginx starts nginx (as a daemon with its pid file in a temp dir) with
// a TLS server block for each site, each serving a fresh self-signed
// certificate.
func startNginx(t *testing.T, sites ...string) *nginxHost {
	t.Helper()
	skipShort(t)
	needBinary(t, "/usr/sbin/nginx", "nginx")
	dir := t.TempDir()
	n := &nginxHost{dir: dir, conf: filepath.Join(dir, "nginx.conf"), addr: freeAddr(t), reloadLog: filepath.Join(dir, "reloads.log"),
		sites: sites, initial: map[string]certstest.Chain{}}
	for _, sub := range []string{"tls", "tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	var servers strings.Builder
	for _, site := range sites {
		ch := certstest.New(t, certstest.Options{DNSNames: []string{site}})
		n.initial[site] = ch
		if err := os.WriteFile(n.certPath(site), []byte(ch.CertPEM), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(n.keyPath(site), []byte(ch.KeyPEM), 0o600); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&servers, "    server {\n        listen %s ssl;\n        server_name %s;\n        ssl_certificate %s;\n        ssl_certificate_key %s;\n        return 200 \"ok\\n\";\n    }\n",
			n.addr, site, n.certPath(site), n.keyPath(site))
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
	if err := os.WriteFile(n.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/nginx", "-e", filepath.Join(dir, "logs", "error.log"), "-c", n.conf).CombinedOutput(); err != nil {
		t.Fatalf("start nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() { stopByPidFile(filepath.Join(dir, "nginx.pid"), syscall.SIGQUIT) })
	waitListening(t, n.addr, nil, filepath.Join(dir, "logs", "error.log"))
	return n
}

// stopByPidFile signals the process named in a pid file and waits for it to go.
func stopByPidFile(pidFile string, sig syscall.Signal) {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, sig)
	// Not our child (it daemonised): nothing to wait on but its pid.
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for range 100 {
		if syscall.Kill(pid, 0) != nil {
			return
		}
		<-tick.C
	}
	syscall.Kill(pid, syscall.SIGKILL)
}

// haproxyHost is HAProxy in master-worker mode (-W -D, pid file in a temp
// dir) with one TLS bind whose "crt" is pem. Reload: kill -USR2 the master,
// which re-reads the configuration and certificates and replaces its workers.
type haproxyHost struct {
	dir, cfg, pem, pidFile, addr string
	reloadLog                    string
	initial                      certstest.Chain
}

func (h *haproxyHost) testCommand() string { return "/usr/sbin/haproxy -q -c -f " + h.cfg }
func (h *haproxyHost) reloadCommand() string {
	return "echo reload >> " + h.reloadLog + " && kill -USR2 $(cat " + h.pidFile + ")"
}

func startHAProxy(t *testing.T, site string) *haproxyHost {
	t.Helper()
	skipShort(t)
	needBinary(t, "/usr/sbin/haproxy", "haproxy")
	dir := t.TempDir()
	h := &haproxyHost{dir: dir, cfg: filepath.Join(dir, "haproxy.cfg"), pem: filepath.Join(dir, "site.pem"),
		pidFile: filepath.Join(dir, "haproxy.pid"), addr: freeAddr(t), reloadLog: filepath.Join(dir, "reloads.log")}
	h.initial = certstest.New(t, certstest.Options{DNSNames: []string{site}})
	if err := os.WriteFile(h.pem, []byte(h.initial.CertPEM+h.initial.KeyPEM), 0o600); err != nil {
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
`, h.pidFile, h.addr, h.pem)
	if err := os.WriteFile(h.cfg, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/haproxy", "-W", "-D", "-q", "-f", h.cfg, "-p", h.pidFile).CombinedOutput(); err != nil {
		t.Fatalf("start haproxy: %v\n%s", err, out)
	}
	t.Cleanup(func() { stopByPidFile(h.pidFile, syscall.SIGTERM) })
	waitListening(t, h.addr, nil, h.cfg)
	return h
}
