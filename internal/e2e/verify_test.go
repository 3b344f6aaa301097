package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
	"github.com/certfleet/certfleet/internal/testutil"
)

// verifyRig is a certfleet with local FILE targets whose files a real nginx
// on loopback serves: certfleet writes them, reloads nginx (or, to simulate a
// reload that silently does nothing, runs `true`), and verifies with a TLS
// handshake what nginx serves.
type verifyRig struct {
	*jobRig
	f       fileRoot
	nginx   string // nginx's TLS address
	conf    string
	domain  string
	files   fileSet
	initial certstest.Chain // what nginx serves before any deployment
}

func (v *verifyRig) reloadCommand() string { return "/usr/sbin/nginx -s reload -c " + v.conf }

// newVerifyRig starts nginx serving a fresh certificate for domain from the
// files of f.files("site"), then certfleet allowed to write them and to run
// the nginx reload or `true`.
func newVerifyRig(t *testing.T, engine, domain string, extra ...string) *verifyRig {
	t.Helper()
	skipShort(t)
	needBinary(t, "/usr/sbin/nginx", "nginx")
	f := newFileRoot(t)
	v := &verifyRig{f: f, domain: domain, files: f.files("site"), initial: certstest.New(t, certstest.Options{DNSNames: []string{domain}})}
	dir := t.TempDir()
	for _, sub := range []string{"tmp", "logs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	v.writeFiles(t, v.initial)
	v.nginx, v.conf = testutil.FreeAddr(t), filepath.Join(dir, "nginx.conf")
	conf := fmt.Sprintf(`pid %[1]s/nginx.pid;
error_log %[1]s/logs/error.log;
worker_processes 1;
events { worker_connections 64; }
http {
    access_log %[1]s/logs/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
    server {
        listen %[2]s ssl;
        server_name %[3]s;
        ssl_certificate %[4]s;
        ssl_certificate_key %[5]s;
        return 200 "ok\n";
    }
}
`, dir, v.nginx, domain, v.files.cert, v.files.key)
	if err := os.WriteFile(v.conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("/usr/sbin/nginx", "-e", filepath.Join(dir, "logs", "error.log"), "-c", v.conf).CombinedOutput(); err != nil {
		t.Fatalf("start nginx: %v\n%s", err, out)
	}
	t.Cleanup(func() { stopByPidFile(filepath.Join(dir, "nginx.pid"), syscall.SIGQUIT) })
	waitListening(t, v.nginx, nil, filepath.Join(dir, "logs", "error.log"))
	waitServed(t, v.nginx, domain, leafSHA(t, v.initial.CertPEM))
	v.jobRig = newJobRig(t, engine, append([]string{"--local-root", f.root, "--local-reload-allow", v.reloadCommand(),
		"--local-reload-allow", "true", "--retry-base", "100ms", "--retry-attempts", "3", "--lease", "3s"}, extra...)...)
	return v
}

// writeFiles puts a chain in the site's files by hand (not through certfleet).
func (v *verifyRig) writeFiles(t *testing.T, ch certstest.Chain) {
	t.Helper()
	for path, content := range map[string]string{v.files.cert: ch.CertPEM, v.files.key: ch.KeyPEM, v.files.chain: ch.IntermediatePEM} {
		mode := os.FileMode(0o644)
		if path == v.files.key {
			mode = 0o600
		}
		if err := os.WriteFile(path, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
}

// resource creates the site's FILE resource, verified on nginx's address.
func (v *verifyRig) resource(name, reload string, extra map[string]any) int64 {
	v.t.Helper()
	cfg := map[string]any{"CertPath": v.files.cert, "KeyPath": v.files.key, "ChainPath": v.files.chain, "ReloadCommand": reload,
		"VerifyAddress": v.nginx}
	for k, val := range extra {
		cfg[k] = val
	}
	return idOf(v.t, v.own("CreateCloudResource", map[string]string{"CloudName": "local", "CloudProduct": "FILE", "Domain": v.domain,
		"Name": name, "Config": jsonConfig(cfg)}), "Id")
}

// fileContents reads the site's cert and key files.
func (v *verifyRig) fileContents(t *testing.T) (cert, key string) {
	t.Helper()
	c, err := os.ReadFile(v.files.cert)
	if err != nil {
		t.Fatal(err)
	}
	k, err := os.ReadFile(v.files.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(c), string(k)
}

// resourceObserved is a resource as ListCloudResources shows it, with
// certfleet's observation fields, read through the generic client.
type resourceObserved struct {
	ID               int64 `json:"Id"`
	CertID           int64 `json:"CertId"`
	ObservedSha2     string
	ObservedSubject  string
	ObservedNotAfter string
	ObservedAt       string
	ObservedError    string
	Stale            bool
}

func (v *verifyRig) listed(resourceID int64) resourceObserved {
	v.t.Helper()
	body := v.own("ListCloudResources", map[string]string{"ShowSize": "1000"})
	b, _ := json.Marshal(body["Data"])
	var list []resourceObserved
	if err := json.Unmarshal(b, &list); err != nil {
		v.t.Fatalf("decode resources: %v (%s)", err, b)
	}
	for _, r := range list {
		if r.ID == resourceID {
			return r
		}
	}
	v.t.Fatalf("resource %d not listed", resourceID)
	return resourceObserved{}
}

// previewItem is one item of PreviewDeploymentJob.
type previewItem struct {
	ResourceID    int64 `json:"ResourceId"`
	Domain        string
	CertID        int64 `json:"CertId"`
	CertSha2      string
	ObservedSha2  string
	ObservedError string
	Source        string
	WouldChange   bool
}

func (v *verifyRig) preview(jobID int64) map[int64]previewItem {
	v.t.Helper()
	body := v.own("PreviewDeploymentJob", map[string]string{"JobId": strconv.FormatInt(jobID, 10)})
	b, _ := json.Marshal(body["Data"])
	var list []previewItem
	if err := json.Unmarshal(b, &list); err != nil {
		v.t.Fatalf("decode preview: %v (%s)", err, b)
	}
	out := map[int64]previewItem{}
	for _, it := range list {
		out[it.ResourceID] = it
	}
	return out
}

// TestVerifyDeploySucceeds deploys to a FILE target nginx serves, with a
// reload that really reloads: nginx serves the new certificate and the
// worker succeeds once verification has seen it.
func TestVerifyDeploySucceeds(t *testing.T) {
	t.Parallel()
	forEachEngine(t, func(t *testing.T, engine string) {
		v := newVerifyRig(t, engine, "www.verify.test")
		cert, ch := v.upload("new", certstest.Options{DNSNames: []string{v.domain}})
		res := v.resource("www", v.reloadCommand(), map[string]any{"VerifyGraceSeconds": 10})

		job := v.createJob(jobSpec{certs: []int64{cert}, resources: []int64{res}})
		v.run(job, "success")
		want := leafSHA(t, ch.CertPEM)
		waitServed(t, v.nginx, v.domain, want)
		if w := v.worker(job, res); w.Status != "success" || w.ErrorMessage != "" || w.Attempts > 1 {
			t.Fatalf("worker %+v, want a first-attempt success", w)
		}
		if d := v.describe(job); tea.Int32Value(d.Rollback) != 0 {
			t.Fatalf("job Rollback = %d, want 0", tea.Int32Value(d.Rollback))
		}
		// The verification's observation is recorded.
		if l := v.listed(res); l.CertID != cert || l.ObservedSha2 != want || l.Stale || l.ObservedError != "" || l.ObservedAt == "" {
			t.Fatalf("listed %+v; want CertId %d observed %s, not stale", l, cert, want)
		}
	})
}

// TestVerifyFailureRollsBack deploys to a FILE target whose reload command
// succeeds without reloading: nginx keeps serving the old certificate, so the
// worker fails after VerifyGraceSeconds with what was served, the files are
// put back, and the job is marked rolled back. Without AutoRollback the
// files stay.
func TestVerifyFailureRollsBack(t *testing.T) {
	t.Parallel()
	v := newVerifyRig(t, "sqlite", "www.verify.test")
	oldSHA := leafSHA(t, v.initial.CertPEM)

	for _, tc := range []struct {
		desc         string
		autoRollback any // nil: default
		wantMessage  string
		wantRollback int32
	}{
		{desc: "automatic rollback", wantMessage: "; rolled back", wantRollback: 1},
		{desc: "no automatic rollback", autoRollback: false, wantRollback: 0},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			r := &verifyRig{jobRig: v.with(t), f: v.f, nginx: v.nginx, conf: v.conf, domain: v.domain, files: v.files, initial: v.initial}
			r.writeFiles(t, v.initial)
			beforeCert, beforeKey := r.fileContents(t)
			cert, ch := r.upload("new-"+strconv.Itoa(int(tc.wantRollback)), certstest.Options{DNSNames: []string{r.domain}})
			extra := map[string]any{"VerifyGraceSeconds": 2}
			if tc.autoRollback != nil {
				extra["AutoRollback"] = tc.autoRollback
			}
			res := r.resource("silent-"+strconv.Itoa(int(tc.wantRollback)), "true", extra)

			job := r.createJob(jobSpec{certs: []int64{cert}, resources: []int64{res}})
			r.run(job, "error")
			w := r.worker(job, res)
			if w.Status != "error" || w.Attempts != 1 {
				t.Fatalf("worker %+v, want error after one attempt (verification failures are not retried)", w)
			}
			for _, part := range []string{"verification failed", oldSHA, leafSHA(t, ch.CertPEM), "expires", tc.wantMessage} {
				if !strings.Contains(w.ErrorMessage, part) {
					t.Fatalf("ErrorMessage %q does not mention %q", w.ErrorMessage, part)
				}
			}
			if d := r.describe(job); tea.Int32Value(d.Rollback) != tc.wantRollback {
				t.Fatalf("job Rollback = %d, want %d", tea.Int32Value(d.Rollback), tc.wantRollback)
			}
			gotCert, gotKey := r.fileContents(t)
			if tc.wantRollback == 1 {
				if gotCert != beforeCert || gotKey != beforeKey {
					t.Fatal("the files were not rolled back")
				}
			} else if gotCert != ch.CertPEM || gotKey != ch.KeyPEM {
				t.Fatal("without AutoRollback the deployed files should stay")
			}
			if got := r.servedCert(res); got != 0 {
				t.Fatalf("resource records certificate %d as deployed, want none", got)
			}
			if got, err := served(r.nginx, r.domain); err != nil || got != oldSHA {
				t.Fatalf("nginx serves %s (%v), want the old %s", got, err, oldSHA)
			}
			// Each file belongs to one resource: the next case's resource
			// writes the same files, so this one goes.
			r.own("DeleteCloudResource", map[string]string{"Id": strconv.FormatInt(res, 10)})
		})
	}
}

// TestVerifyPreviewAndCheck: PreviewDeploymentJob says what a job would
// change before and after it runs; CheckCloudResource records what a
// resource serves, and ListCloudResources and DescribeCloudResourceStatus
// show it, stale when nginx serves another certificate than the deployed one.
func TestVerifyPreviewAndCheck(t *testing.T) {
	t.Parallel()
	v := newVerifyRig(t, "sqlite", "www.verify.test")
	cert, ch := v.upload("new", certstest.Options{DNSNames: []string{v.domain, "plain.verify.test"}})
	newSHA := leafSHA(t, ch.CertPEM)
	probed := v.resource("probed", v.reloadCommand(), map[string]any{"VerifyGraceSeconds": 10})
	pf := v.f.files("plain") // no VerifyAddress: judged by records
	plain := idOf(t, v.own("CreateCloudResource", map[string]string{"CloudName": "local", "CloudProduct": "FILE", "Domain": "plain.verify.test",
		"Config": jsonConfig(map[string]any{"CertPath": pf.cert, "KeyPath": pf.key, "ReloadCommand": "true"})}), "Id")

	job := v.createJob(jobSpec{certs: []int64{cert}, resources: []int64{probed, plain}})
	before := v.preview(job)
	if p := before[probed]; !p.WouldChange || p.Source != "probe" || p.ObservedSha2 != leafSHA(t, v.initial.CertPEM) || p.CertSha2 != newSHA || p.CertID != cert {
		t.Fatalf("preview of the probed resource before the job: %+v", p)
	}
	if p := before[plain]; !p.WouldChange || p.Source != "record" || p.ObservedSha2 != "" {
		t.Fatalf("preview of the plain resource before the job: %+v", p)
	}
	if l := v.listed(probed); l.ObservedSha2 != "" || l.ObservedAt != "" {
		t.Fatalf("PreviewDeploymentJob recorded an observation: %+v", l)
	}

	v.run(job, "success")
	after := v.preview(job)
	for _, id := range []int64{probed, plain} {
		if p := after[id]; p.WouldChange || p.ObservedSha2 != newSHA {
			t.Fatalf("preview of resource %d after the job: %+v, want no change", id, p)
		}
	}

	// Someone puts the old certificate back by hand and reloads nginx.
	v.writeFiles(t, v.initial)
	if out, err := exec.Command("/bin/sh", "-c", v.reloadCommand()).CombinedOutput(); err != nil {
		t.Fatalf("reload nginx: %v\n%s", err, out)
	}
	oldSHA := leafSHA(t, v.initial.CertPEM)
	waitServed(t, v.nginx, v.domain, oldSHA)

	body := v.own("CheckCloudResource", map[string]string{"Id": strconv.FormatInt(probed, 10)})
	b, _ := json.Marshal(body["Data"])
	var check struct {
		ResourceID   int64 `json:"ResourceId"`
		CertSha2     string
		ObservedSha2 string
		Stale        bool
		Addresses    []struct{ Address, Sha2 string }
	}
	if err := json.Unmarshal(b, &check); err != nil {
		t.Fatalf("decode CheckCloudResource: %v (%s)", err, b)
	}
	if check.ObservedSha2 != oldSHA || check.CertSha2 != newSHA || !check.Stale || len(check.Addresses) != 1 || check.Addresses[0].Address != v.nginx {
		t.Fatalf("CheckCloudResource: %s", b)
	}
	l := v.listed(probed)
	if l.ObservedSha2 != oldSHA || !l.Stale || l.ObservedAt == "" || l.ObservedError != "" || !strings.Contains(l.ObservedSubject, v.domain) {
		t.Fatalf("listed after the check: %+v", l)
	}
	if n := msField(t, "ObservedNotAfter", &l.ObservedNotAfter); n != v.initial.Leaf.NotAfter.UnixMilli() {
		t.Fatalf("ObservedNotAfter = %d, want %d", n, v.initial.Leaf.NotAfter.UnixMilli())
	}
	if p := v.preview(job)[probed]; !p.WouldChange || p.ObservedSha2 != oldSHA {
		t.Fatalf("preview after the certificate was replaced by hand: %+v", p)
	}

	status := v.own("DescribeCloudResourceStatus", nil)
	b, _ = json.Marshal(status["Data"])
	var counts []struct {
		CloudName, CloudProduct               string
		TotalCount, StaleCount, ExpiringCount int64
	}
	if err := json.Unmarshal(b, &counts); err != nil {
		t.Fatalf("decode status: %v (%s)", err, b)
	}
	if len(counts) != 1 || counts[0].TotalCount != 2 || counts[0].StaleCount != 1 || counts[0].ExpiringCount != 0 {
		t.Fatalf("DescribeCloudResourceStatus: %s; want local/FILE total 2, stale 1, expiring 0", b)
	}

	// A resource without VerifyAddress cannot be checked.
	_, err := v.srv.callOwn("CheckCloudResource", map[string]string{"Id": strconv.FormatInt(plain, 10)})
	wantAPIError(t, err, "InvalidParameter", "VerifyAddress")
	// The official SDK still reads the listing (it ignores the added fields).
	if _, err := v.c.ListCloudResources(&cas.ListCloudResourcesRequest{}); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyConfigValidation: the generic keys are accepted by every product
// and checked once.
func TestVerifyConfigValidation(t *testing.T) {
	t.Parallel()
	f := newFileRoot(t)
	r := newJobRig(t, "sqlite", f.args()...)
	fs := f.files("v")
	base := map[string]any{"CertPath": fs.cert, "KeyPath": fs.key}
	for _, tc := range []struct {
		desc    string
		product [2]string
		extra   map[string]any
		wantErr string // empty: accepted
	}{
		{desc: "file with all keys", product: [2]string{"local", "FILE"},
			extra: map[string]any{"VerifyAddress": []string{"127.0.0.1:443", "localhost:8443"}, "VerifyGraceSeconds": 5, "AutoRollback": false}},
		{desc: "webhook with an address", product: [2]string{"webhook", "WEBHOOK"}, extra: map[string]any{"VerifyAddress": "127.0.0.1:443"}},
		{desc: "address without port", product: [2]string{"local", "FILE"}, extra: map[string]any{"VerifyAddress": "127.0.0.1"}, wantErr: "VerifyAddress"},
		{desc: "grace too long", product: [2]string{"local", "FILE"}, extra: map[string]any{"VerifyGraceSeconds": 100000}, wantErr: "VerifyGraceSeconds"},
		{desc: "product keys still checked", product: [2]string{"local", "FILE"}, extra: map[string]any{"VerifyAddress": "a:1", "Bogus": 1}, wantErr: "Bogus"},
	} {
		t.Run(tc.desc, func(t *testing.T) {
			cfg := map[string]any{}
			if tc.product[0] == "webhook" {
				cfg["Url"] = "https://hooks.example.test/cert"
			} else {
				for k, val := range base {
					cfg[k] = val
				}
			}
			for k, val := range tc.extra {
				cfg[k] = val
			}
			_, err := r.srv.callOwn("CreateCloudResource", map[string]string{"CloudName": tc.product[0], "CloudProduct": tc.product[1],
				"Domain": "v.example.test", "Config": jsonConfig(cfg)})
			if tc.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantAPIError(t, err, "InvalidParameter", tc.wantErr)
		})
	}
}
