package e2e

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
	"github.com/certfleet/certfleet/internal/testutil/hosts"
)

// needBinary skips (locally) or fails (CI) a test when a program is missing.
func needBinary(t *testing.T, path, pkg string) { t.Helper(); hosts.NeedBinary(t, path, pkg) }

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
	h := hosts.StartSSHD(t, fakeSudo)
	return &sshHost{addr: h.Addr, port: h.Port, hostKey: h.HostKey, hostFP: h.HostFP, clientKey: h.ClientKey, dir: h.Dir}
}

// waitListening waits until addr accepts TCP connections.
func waitListening(t *testing.T, addr string, exited <-chan struct{}, logPath string) {
	t.Helper()
	hosts.WaitListening(t, addr, exited, logPath)
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
	// serve: look until they do. Old workers may still take a connection
	// after a new one answered, so it takes three matching answers in a row.
	var last string
	matches := 0
	testutil.WaitFor(t, 15*time.Second, fmt.Sprintf("%s (SNI %s) to serve %s", addr, serverName, want), func() (bool, error) {
		got, err := served(addr, serverName)
		if err == nil && got == want {
			matches++
			return matches >= 3, nil
		}
		matches = 0
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
	n := hosts.StartNginx(t, sites...)
	return &nginxHost{dir: n.Dir, conf: n.Conf, addr: n.Addr, reloadLog: n.ReloadLog, sites: n.Sites, initial: n.Initial}
}

// stopByPidFile signals the process named in a pid file and waits for it to go.
func stopByPidFile(pidFile string, sig syscall.Signal) { hosts.StopByPidFile(pidFile, sig) }

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
	h := hosts.StartHAProxy(t, site)
	return &haproxyHost{dir: h.Dir, cfg: h.Cfg, pem: h.Pem, pidFile: h.PidFile, addr: h.Addr, reloadLog: h.ReloadLog, initial: h.Initial}
}
