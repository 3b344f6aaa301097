package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// sshServerArgs: fast retries, and room for every resource of a job on one
// host to run at once (a reload round covers at most --per-host workers).
var sshServerArgs = []string{"--retry-base", "100ms", "--per-host", "64"}

// nginxConfig is an ssh/NGINX resource Config for site on n.
func nginxConfig(n *nginxHost, site string) map[string]any {
	return map[string]any{"CertPath": n.certPath(site), "KeyPath": n.keyPath(site),
		"TestCommand": n.testCommand(), "ReloadCommand": n.reloadCommand()}
}

// TestSSHNginxDeployRollback deploys to nginx over SSH, checks the listener
// serves the new certificate, rolls back, and checks the old one is back.
func TestSSHNginxDeployRollback(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		const site = "www.example.test"
		h := startSSHD(t)
		n := startNginx(t, site)
		srv := startServer(t, engine, serverOpts{args: sshServerArgs})
		c := srv.client(false)
		access := srv.sshAccess(h)
		res := srv.sshResource(h, access, "NGINX", site, nginxConfig(n, site))
		certID, ch := uploadCert(t, c, "www", site)
		old := leafSHA(t, n.initial[site].CertPEM)
		waitServed(t, n.addr, site, old)

		jobID, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
		if st != "success" {
			t.Fatalf("job ended %s; workers %+v", st, ws)
		}
		waitServed(t, n.addr, site, leafSHA(t, ch.CertPEM))
		if got, _ := os.ReadFile(n.certPath(site)); string(got) != ch.CertPEM {
			t.Fatalf("CertPath holds %q, want the uploaded chain", got)
		}
		if fi, err := os.Stat(n.keyPath(site)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("KeyPath mode: %v, %v", fi, err)
		}
		if r := n.reloads(t); r != 1 {
			t.Fatalf("%d reloads, want 1", r)
		}

		w := srv.sshRollback(c, jobID, ws[0].ID)
		if w.Status != "rollback_success" {
			t.Fatalf("rollback ended %s: %s", w.Status, w.ErrorMessage)
		}
		waitServed(t, n.addr, site, old)
		if got, _ := os.ReadFile(n.certPath(site)); string(got) != n.initial[site].CertPEM {
			t.Fatal("CertPath was not restored by the rollback")
		}
	})
}

// TestSSHNginxBrokenTest: a failing TestCommand leaves the old files (and
// so the old certificate) in place, skips the reload, and fails the worker
// once, permanently, quoting the command's output.
func TestSSHNginxBrokenTest(t *testing.T) {
	t.Parallel()
	const site = "www.example.test"
	h := startSSHD(t)
	n := startNginx(t, site)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	cfg := nginxConfig(n, site)
	cfg["TestCommand"] = "echo 'emerg: broken on purpose' >&2; false"
	res := srv.sshResource(h, srv.sshAccess(h), "NGINX", site, cfg)
	certID, _ := uploadCert(t, c, "www", site)

	_, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
	if st != "error" || len(ws) != 1 {
		t.Fatalf("job ended %s, workers %+v; want error", st, ws)
	}
	w := ws[0]
	if w.Status != "error" || w.Attempts != 1 || !strings.Contains(w.ErrorMessage, "broken on purpose") || !strings.Contains(w.ErrorMessage, "TestCommand") {
		t.Fatalf("worker %+v; want one permanent failure quoting the test output", w)
	}
	if got, _ := os.ReadFile(n.certPath(site)); string(got) != n.initial[site].CertPEM {
		t.Fatal("CertPath was not put back after the failed test")
	}
	if got, _ := os.ReadFile(n.keyPath(site)); string(got) != n.initial[site].KeyPEM {
		t.Fatal("KeyPath was not put back after the failed test")
	}
	if r := n.reloads(t); r != 0 {
		t.Fatalf("%d reloads after a failed test, want 0", r)
	}
	waitServed(t, n.addr, site, leafSHA(t, n.initial[site].CertPEM))
}

// TestSSHUnknownHostKey: a host presenting a key other than the pinned one
// is refused, permanently, with both fingerprints in the error, and nothing
// is written.
func TestSSHUnknownHostKey(t *testing.T) {
	t.Parallel()
	const site = "www.example.test"
	h := startSSHD(t)
	n := startNginx(t, site)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	other, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	otherPub, err := ssh.NewPublicKey(other)
	if err != nil {
		t.Fatal(err)
	}
	otherFP := ssh.FingerprintSHA256(otherPub)
	access := srv.sshAccess(h)

	for _, pin := range []struct{ desc, hostKey string }{
		{"fingerprint", otherFP},
		{"public key", strings.TrimSpace(string(ssh.MarshalAuthorizedKey(otherPub)))},
	} {
		t.Run(pin.desc, func(t *testing.T) {
			cfg := nginxConfig(n, site)
			cfg["HostKey"] = pin.hostKey
			res := srv.sshResource(h, access, "NGINX", site, cfg)
			certID, _ := uploadCert(t, c, "www-"+strings.ReplaceAll(pin.desc, " ", "-"), site)
			_, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
			if st != "error" || len(ws) != 1 {
				t.Fatalf("job ended %s, workers %+v; want error", st, ws)
			}
			w := ws[0]
			if w.Attempts != 1 || !strings.Contains(w.ErrorMessage, h.hostFP) || !strings.Contains(w.ErrorMessage, otherFP) {
				t.Fatalf("worker %+v; want one permanent failure naming %s and %s", w, h.hostFP, otherFP)
			}
			if got, _ := os.ReadFile(n.certPath(site)); string(got) != n.initial[site].CertPEM {
				t.Fatal("CertPath changed although the host key was refused")
			}
		})
	}

	// A HostKey that is neither a key nor a fingerprint is refused up front.
	cfg := nginxConfig(n, site)
	cfg["HostKey"] = "not a key"
	if _, err := srv.trySSHResource(h, access, "NGINX", site, cfg); err == nil || !strings.Contains(err.Error(), "HostKey") {
		t.Fatalf("bad HostKey accepted: %v", err)
	}
}

// TestSSHNginxOneReloadPerHost: fifty vhosts on one host are written, then
// tested and reloaded once.
func TestSSHNginxOneReloadPerHost(t *testing.T) {
	t.Parallel()
	const count = 50
	sites := make([]string, count)
	for i := range sites {
		sites[i] = fmt.Sprintf("site%02d.example.test", i)
	}
	h := startSSHD(t)
	n := startNginx(t, sites...)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	access := srv.sshAccess(h)
	var resources []int64
	for _, site := range sites {
		resources = append(resources, srv.sshResource(h, access, "NGINX", site, nginxConfig(n, site)))
	}
	certID, ch := uploadCert(t, c, "many", sites...)
	_, st, ws := srv.runSSHJob(c, certID, 120*time.Second, resources...)
	if st != "success" {
		t.Fatalf("job ended %s; workers %+v", st, ws)
	}
	for _, w := range ws {
		if w.Status != "success" {
			t.Fatalf("worker %+v", w)
		}
	}
	if r := n.reloads(t); r != 1 {
		t.Fatalf("%d reloads for %d vhosts on one host, want 1", r, count)
	}
	want := leafSHA(t, ch.CertPEM)
	for _, site := range sites {
		waitServed(t, n.addr, site, want)
	}
}

// TestSSHHAProxyDeployRollback deploys one combined PEM to HAProxy (reloaded
// with kill -USR2 to its master-worker master) and rolls it back.
func TestSSHHAProxyDeployRollback(t *testing.T) {
	t.Parallel()
	const site = "lb.example.test"
	h := startSSHD(t)
	hp := startHAProxy(t, site)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	res := srv.sshResource(h, srv.sshAccess(h), "HAPROXY", site, map[string]any{"PemPath": hp.pem,
		"TestCommand": hp.testCommand(), "ReloadCommand": hp.reloadCommand()})
	certID, ch := uploadCert(t, c, "lb", site)
	old := leafSHA(t, hp.initial.CertPEM)
	waitServed(t, hp.addr, site, old)

	jobID, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
	if st != "success" {
		t.Fatalf("job ended %s; workers %+v", st, ws)
	}
	waitServed(t, hp.addr, site, leafSHA(t, ch.CertPEM))
	got, _ := os.ReadFile(hp.pem)
	if !strings.HasPrefix(string(got), ch.CertPEM) || !strings.HasSuffix(string(got), ch.KeyPEM) {
		t.Fatalf("PemPath holds %q, want the chain then the key", got)
	}

	w := srv.sshRollback(c, jobID, ws[0].ID)
	if w.Status != "rollback_success" {
		t.Fatalf("rollback ended %s: %s", w.Status, w.ErrorMessage)
	}
	waitServed(t, hp.addr, site, old)
}

// TestSSHFileDeployRollback writes plain files (with a chain file, a key
// mode and an owner) and restores them, removing those that did not exist.
func TestSSHFileDeployRollback(t *testing.T) {
	t.Parallel()
	const site = "files.example.test"
	h := startSSHD(t)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	dir := t.TempDir()
	certPath, chainPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "chain.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, []byte("old cert\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	marker := filepath.Join(dir, "reloaded")
	res := srv.sshResource(h, srv.sshAccess(h), "FILE", site, map[string]any{"CertPath": certPath, "ChainPath": chainPath,
		"KeyPath": keyPath, "KeyMode": "0640", "Owner": "root:root", "ReloadCommand": "touch " + marker})
	certID, ch := uploadCert(t, c, "files", site)

	jobID, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
	if st != "success" {
		t.Fatalf("job ended %s; workers %+v", st, ws)
	}
	for _, f := range []struct {
		path, want string
	}{{certPath, ch.CertPEM}, {chainPath, ch.IntermediatePEM}, {keyPath, ch.KeyPEM}} {
		if got, _ := os.ReadFile(f.path); string(got) != f.want {
			t.Fatalf("%s holds %q, want %q", f.path, got, f.want)
		}
	}
	if fi, err := os.Stat(keyPath); err != nil || fi.Mode().Perm() != 0o640 {
		t.Fatalf("key mode: %v %v", fi, err)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatal("ReloadCommand did not run")
	}

	w := srv.sshRollback(c, jobID, ws[0].ID)
	if w.Status != "rollback_success" {
		t.Fatalf("rollback ended %s: %s", w.Status, w.ErrorMessage)
	}
	if got, _ := os.ReadFile(certPath); string(got) != "old cert\n" {
		t.Fatalf("CertPath after rollback: %q", got)
	}
	for _, p := range []string{chainPath, keyPath} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("%s still exists after the rollback: %v", p, err)
		}
	}
}

// TestSSHNginxSudo deploys with Sudo: files go through "sudo -n sh -c" with
// the content on stdin, and so do the commands (sudo is a shim here that
// records its arguments; the login is already root).
func TestSSHNginxSudo(t *testing.T) {
	t.Parallel()
	const site = "sudo.example.test"
	h := startSSHDWith(t, true)
	n := startNginx(t, site)
	srv := startServer(t, "sqlite", serverOpts{args: sshServerArgs})
	c := srv.client(false)
	cfg := nginxConfig(n, site)
	cfg["Sudo"] = true
	res := srv.sshResource(h, srv.sshAccess(h), "NGINX", site, cfg)
	certID, ch := uploadCert(t, c, "sudo", site)
	jobID, st, ws := srv.runSSHJob(c, certID, 60*time.Second, res)
	if st != "success" {
		t.Fatalf("job ended %s; workers %+v", st, ws)
	}
	waitServed(t, n.addr, site, leafSHA(t, ch.CertPEM))
	if fi, err := os.Stat(n.keyPath(site)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("KeyPath mode: %v, %v", fi, err)
	}
	log, _ := os.ReadFile(filepath.Join(h.dir, "sudo.log"))
	if !strings.Contains(string(log), "nginx -s reload") || !strings.Contains(string(log), n.keyPath(site)) {
		t.Fatalf("sudo ran:\n%s\nwant the file writes and the reload", log)
	}
	if w := srv.sshRollback(c, jobID, ws[0].ID); w.Status != "rollback_success" {
		t.Fatalf("rollback ended %s: %s", w.Status, w.ErrorMessage)
	}
	waitServed(t, n.addr, site, leafSHA(t, n.initial[site].CertPEM))
}
