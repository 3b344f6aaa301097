package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cas "github.com/alibabacloud-go/cas-20200407/v3/client"
	"github.com/alibabacloud-go/tea/tea"

	"github.com/certfleet/certfleet/internal/certs/certstest"
)

// jobRig is one server with an SDK client and a contact, for the job tests.
// Its helpers fail r.t; use r.with(t) inside a subtest.
type jobRig struct {
	t       *testing.T
	srv     *server
	c       *cas.Client
	contact int64
}

func newJobRig(t *testing.T, engine string, args ...string) *jobRig {
	t.Helper()
	srv := startServer(t, engine, serverOpts{args: args})
	return &jobRig{t: t, srv: srv, c: srv.client(false), contact: srv.contact()}
}

// with returns the rig failing t instead.
func (r *jobRig) with(t *testing.T) *jobRig {
	cp := *r
	cp.t = t
	return &cp
}

func (r *jobRig) own(action string, query map[string]string) map[string]any {
	r.t.Helper()
	body, err := r.srv.callOwn(action, query)
	if err != nil {
		r.t.Fatalf("%s: %v", action, err)
	}
	return body
}

// upload uploads a fresh certificate for o.DNSNames.
func (r *jobRig) upload(name string, o certstest.Options) (int64, certstest.Chain) {
	r.t.Helper()
	ch := certstest.New(r.t, o)
	up, err := r.c.UploadUserCertificate(&cas.UploadUserCertificateRequest{Name: tea.String(name), Cert: tea.String(ch.CertPEM), Key: tea.String(ch.KeyPEM)})
	if err != nil {
		r.t.Fatalf("upload %s: %v", name, err)
	}
	return tea.Int64Value(up.Body.CertId), ch
}

func (r *jobRig) webhook(url, domain string) int64 {
	r.t.Helper()
	return idOf(r.t, r.own("CreateCloudResource", map[string]string{"CloudName": "webhook", "CloudProduct": "WEBHOOK",
		"Domain": domain, "Name": domain, "Config": jsonConfig(map[string]any{"Url": url, "TimeoutSeconds": 5})}), "Id")
}

// jobSpec is what createJob sends; zero fields are left out, except that
// contacts nil means the rig's contact.
type jobSpec struct {
	name      string
	jobType   string // default "user"
	certs     []int64
	resources []int64
	contacts  []int64
	schedule  time.Time
}

func (r *jobRig) tryCreateJob(j jobSpec) (int64, error) {
	if j.name == "" {
		j.name = "job"
	}
	if j.jobType == "" {
		j.jobType = "user"
	}
	if j.contacts == nil {
		j.contacts = []int64{r.contact}
	}
	req := &cas.CreateDeploymentJobRequest{Name: tea.String(j.name), JobType: tea.String(j.jobType)}
	if len(j.certs) > 0 {
		req.CertIds = tea.String(joinIDs(j.certs...))
	}
	if len(j.resources) > 0 {
		req.ResourceIds = tea.String(joinIDs(j.resources...))
	}
	if len(j.contacts) > 0 {
		req.ContactIds = tea.String(joinIDs(j.contacts...))
	}
	if !j.schedule.IsZero() {
		req.ScheduleTime = tea.Int64(j.schedule.UnixMilli())
	}
	resp, err := r.c.CreateDeploymentJob(req)
	if err != nil {
		return 0, err
	}
	return tea.Int64Value(resp.Body.JobId), nil
}

func (r *jobRig) createJob(j jobSpec) int64 {
	r.t.Helper()
	id, err := r.tryCreateJob(j)
	if err != nil {
		r.t.Fatalf("create job %q: %v", j.name, err)
	}
	return id
}

func (r *jobRig) setStatus(jobID int64, status string) error {
	_, err := r.c.UpdateDeploymentJobStatus(&cas.UpdateDeploymentJobStatusRequest{JobId: tea.Int64(jobID), Status: tea.String(status)})
	return err
}

func (r *jobRig) mustSetStatus(jobID int64, status string) {
	r.t.Helper()
	if err := r.setStatus(jobID, status); err != nil {
		r.t.Fatalf("job %d to %s: %v", jobID, status, err)
	}
}

func (r *jobRig) describe(jobID int64) *cas.DescribeDeploymentJobResponseBody {
	r.t.Helper()
	d, err := r.c.DescribeDeploymentJob(&cas.DescribeDeploymentJobRequest{JobId: tea.Int64(jobID)})
	if err != nil {
		r.t.Fatalf("describe job %d: %v", jobID, err)
	}
	return d.Body
}

func (r *jobRig) status(jobID int64) string {
	r.t.Helper()
	return tea.StringValue(r.describe(jobID).Status)
}

// wait waits up to timeout for the job to reach one of want and returns it.
func (r *jobRig) wait(jobID int64, timeout time.Duration, want ...string) string {
	r.t.Helper()
	var st string
	waitFor(r.t, timeout, fmt.Sprintf("job %d to reach %v", jobID, want), func() (bool, error) {
		st = r.status(jobID)
		for _, w := range want {
			if st == w {
				return true, nil
			}
		}
		return false, nil
	})
	return st
}

// run moves an editing job to pending and waits for it to end with want.
func (r *jobRig) run(jobID int64, want string) {
	r.t.Helper()
	r.mustSetStatus(jobID, "pending")
	r.waitEnd(jobID, want)
}

// waitEnd waits for a started job to end with want.
func (r *jobRig) waitEnd(jobID int64, want string) {
	r.t.Helper()
	if st := r.wait(jobID, 30*time.Second, "success", "error"); st != want {
		r.t.Fatalf("job %d ended %s, want %s; workers: %+v", jobID, st, want, r.workers(jobID))
	}
}

func (r *jobRig) counts(jobID int64) *cas.DescribeDeploymentJobStatusResponseBody {
	r.t.Helper()
	d, err := r.c.DescribeDeploymentJobStatus(&cas.DescribeDeploymentJobStatusRequest{JobId: tea.Int64(jobID)})
	if err != nil {
		r.t.Fatalf("job %d status counts: %v", jobID, err)
	}
	return d.Body
}

// workerInfo is a worker as ListWorkerResource shows it, with certfleet's
// additions (ErrorMessage, Attempts) that the SDK drops; it is read through
// the generic client.
type workerInfo struct {
	ID             int64 `json:"Id"`
	ResourceID     int64 `json:"ResourceId"`
	ResourceDomain string
	CertID         int64 `json:"CertId"`
	ResourceCertID int64 `json:"ResourceCertId"`
	Status         string
	ErrorMessage   string
	Attempts       int
}

func (r *jobRig) workers(jobID int64) []workerInfo {
	r.t.Helper()
	body := r.own("ListWorkerResource", map[string]string{"JobId": strconv.FormatInt(jobID, 10), "ShowSize": "1000"})
	b, _ := json.Marshal(body["Data"])
	var out []workerInfo
	if err := json.Unmarshal(b, &out); err != nil {
		r.t.Fatalf("decode workers of job %d: %v (%s)", jobID, err, b)
	}
	return out
}

// worker returns the job's worker for a resource.
func (r *jobRig) worker(jobID, resourceID int64) workerInfo {
	r.t.Helper()
	for _, w := range r.workers(jobID) {
		if w.ResourceID == resourceID {
			return w
		}
	}
	r.t.Fatalf("job %d has no worker for resource %d", jobID, resourceID)
	return workerInfo{}
}

func (r *jobRig) requestRollback(jobID, workerID int64) error {
	_, err := r.c.UpdateWorkerResourceStatus(&cas.UpdateWorkerResourceStatusRequest{JobId: tea.Int64(jobID), WorkerId: tea.Int64(workerID),
		Status: tea.String("rollback")})
	return err
}

// rollback rolls back the job's worker for a resource and waits for it to end with want.
func (r *jobRig) rollback(jobID, resourceID int64, want string) workerInfo {
	r.t.Helper()
	w := r.worker(jobID, resourceID)
	if err := r.requestRollback(jobID, w.ID); err != nil {
		r.t.Fatalf("roll back worker %d: %v", w.ID, err)
	}
	waitFor(r.t, 30*time.Second, fmt.Sprintf("worker %d to end its rollback", w.ID), func() (bool, error) {
		w = r.worker(jobID, resourceID)
		return w.Status == "rollback_success" || w.Status == "rollback_error", nil
	})
	if w.Status != want {
		r.t.Fatalf("worker %d ended %s (%s), want %s", w.ID, w.Status, w.ErrorMessage, want)
	}
	return w
}

// servedCert is the CertId ListCloudResources shows for a resource.
func (r *jobRig) servedCert(resourceID int64) int64 {
	r.t.Helper()
	for page := int32(1); ; page++ {
		resp, err := r.c.ListCloudResources(&cas.ListCloudResourcesRequest{CurrentPage: tea.Int32(page), ShowSize: tea.Int32(1000)})
		if err != nil {
			r.t.Fatalf("list resources: %v", err)
		}
		for _, d := range resp.Body.Data {
			if tea.Int64Value(d.Id) == resourceID {
				return tea.Int64Value(d.CertId)
			}
		}
		if len(resp.Body.Data) < 1000 {
			r.t.Fatalf("resource %d not listed", resourceID)
		}
	}
}

// wantAPIError checks an SDK error's code and that its text mentions each of parts.
func wantAPIError(t *testing.T, err error, code string, parts ...string) {
	t.Helper()
	got, _ := sdkErr(t, err)
	if got != code {
		t.Fatalf("error code = %s, want %s (%v)", got, code, err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not mention %q", err, p)
		}
	}
}

// countingReceiver is a receiver behind a front that counts every request
// (the receiver records only those it accepted) per job, action and domain.
type countingReceiver struct {
	*receiver
	// URL is the front's address; resources must use it.
	URL string

	cmu      sync.Mutex
	requests map[string]int
}

func newCountingReceiver(t *testing.T) *countingReceiver {
	t.Helper()
	inner := newReceiver(t)
	c := &countingReceiver{receiver: inner, requests: map[string]int{}}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		var p struct {
			Action string
			JobID  int64 `json:"JobId"`
			Domain string
		}
		json.Unmarshal(body, &p)
		c.cmu.Lock()
		c.requests[requestKey(p.JobID, p.Action, p.Domain)]++
		c.cmu.Unlock()
		req.Body = io.NopCloser(bytes.NewReader(body))
		inner.serve(w, req)
	}))
	t.Cleanup(front.Close)
	c.URL = front.URL
	return c
}

func requestKey(jobID int64, action, domain string) string {
	return fmt.Sprintf("%d %s %s", jobID, action, domain)
}

// count returns how many requests of a job, with action, reached domain.
func (c *countingReceiver) count(jobID int64, action, domain string) int {
	c.cmu.Lock()
	defer c.cmu.Unlock()
	return c.requests[requestKey(jobID, action, domain)]
}

// answer makes the receiver answer status to every delivery for domain (0: accept).
func (c *countingReceiver) answer(domain string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status[domain] = status
}

func (c *countingReceiver) setDelay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.delay = d
}

// accepted returns how many deliveries to domain the receiver accepted.
func (c *countingReceiver) accepted(domain string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.got[domain])
}

// fileRoot is a --local-root for FILE resources and an allowed reload
// command that touches a marker file outside it.
type fileRoot struct {
	t      *testing.T
	root   string
	marker string
	reload string
}

func newFileRoot(t *testing.T) fileRoot {
	t.Helper()
	base, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := fileRoot{t: t, root: filepath.Join(base, "root"), marker: filepath.Join(base, "reloaded")}
	f.reload = "touch " + f.marker
	if err := os.MkdirAll(filepath.Join(f.root, "tls"), 0o755); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f fileRoot) args() []string {
	return []string{"--local-root", f.root, "--local-reload-allow", f.reload}
}

// fileSet is where one FILE resource writes.
type fileSet struct{ cert, key, chain string }

func (f fileRoot) files(name string) fileSet {
	dir := filepath.Join(f.root, "tls")
	return fileSet{filepath.Join(dir, name+".pem"), filepath.Join(dir, name+".key"), filepath.Join(dir, name+".chain.pem")}
}

func (fs fileSet) all() []string { return []string{fs.cert, fs.key, fs.chain} }

// fileResource creates a FILE resource writing f.files(name) and running the reload command.
func (r *jobRig) fileResource(f fileRoot, name, domain string) int64 {
	r.t.Helper()
	fs := f.files(name)
	return idOf(r.t, r.own("CreateCloudResource", map[string]string{"CloudName": "local", "CloudProduct": "FILE", "Domain": domain,
		"Name": name, "Config": jsonConfig(map[string]any{"CertPath": fs.cert, "KeyPath": fs.key, "ChainPath": fs.chain, "ReloadCommand": f.reload})}), "Id")
}

// reloaded reports whether the reload command ran since the last call, and resets it.
func (f fileRoot) reloaded() bool {
	f.t.Helper()
	err := os.Remove(f.marker)
	if err != nil && !os.IsNotExist(err) {
		f.t.Fatal(err)
	}
	return err == nil
}

// holds checks that fs holds ch: full chain, key with mode 0600, intermediates.
func (fs fileSet) holds(t *testing.T, ch certstest.Chain) {
	t.Helper()
	for _, c := range []struct {
		desc, path, want string
		mode             os.FileMode
	}{
		{"full chain", fs.cert, ch.CertPEM, 0o644},
		{"key", fs.key, ch.KeyPEM, 0o600},
		{"chain", fs.chain, ch.IntermediatePEM, 0o644},
	} {
		b, err := os.ReadFile(c.path)
		if err != nil {
			t.Fatalf("%s: %v", c.desc, err)
		}
		if string(b) != c.want {
			t.Fatalf("%s %s holds:\n%s\nwant:\n%s", c.desc, c.path, b, c.want)
		}
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != c.mode {
			t.Fatalf("%s %s has mode %v, want %v", c.desc, c.path, fi.Mode().Perm(), c.mode)
		}
	}
}

// age sets every file's modification time an hour back and returns the times.
func (fs fileSet) age(t *testing.T) map[string]time.Time {
	t.Helper()
	old := time.Now().Add(-time.Hour).Truncate(time.Second)
	out := map[string]time.Time{}
	for _, p := range fs.all() {
		if err := os.Chtimes(p, old, old); err != nil {
			t.Fatal(err)
		}
		out[p] = old
	}
	return out
}

// unchangedSince checks that no file was rewritten since age.
func (fs fileSet) unchangedSince(t *testing.T, mtimes map[string]time.Time) {
	t.Helper()
	for _, p := range fs.all() {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if !fi.ModTime().Equal(mtimes[p]) {
			t.Fatalf("%s was rewritten: mtime %v, want %v", p, fi.ModTime(), mtimes[p])
		}
	}
}

func msField(t *testing.T, what string, v *string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(tea.StringValue(v), 10, 64)
	if err != nil {
		t.Fatalf("%s = %q is not epoch milliseconds", what, tea.StringValue(v))
	}
	return n
}

func (c *countingReceiver) requestsTotal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.total
}

func (c *countingReceiver) overlaps() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.overlap
}
