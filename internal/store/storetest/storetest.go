// Package storetest is the conformance suite of store.Store: one set of
// behavioural tests that every engine (sqlite, postgres) runs against a real
// database through Run, so both engines keep the same contract.
//
// It is not a place for engine-specific tests (migrations on disk, driver
// error codes): those live next to the engine. It tests only what the
// store.Store interface promises, through that interface.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Run runs the whole suite. open must return a fresh, empty, migrated store
// for each call (and arrange its Close with t.Cleanup); every subtest opens
// its own store, so subtests run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	setup := func(t *testing.T) *bundle { return newBundle(t, open) }
	groups := []struct {
		name string
		fn   func(t *testing.T, setup func(t *testing.T) *bundle)
	}{
		{"Accounts", testAccounts},
		{"Certificates", testCertificates},
		{"CloudAccess", testCloudAccess},
		{"Resources", testResources},
		{"Contacts", testContacts},
		{"Jobs", testJobs},
		{"Workers", testWorkers},
		{"JobControl", testJobControl},
		{"Concurrency", testConcurrency},
		{"Notifications", testNotifications},
		{"Waves", testWaves},
		{"RAM", testRAM},
		{"Audit", testAudit},
		{"Observations", testObservations},
		{"DeployedBy", testDeployedBy},
		{"Cluster", testCluster},
		{"Console", testConsole},
		{"ACME", testACME},
		{"Discovery", testDiscovery},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.fn(t, setup)
		})
	}
}

// bundle is what a subtest works with: a fresh store, two accounts (the
// second only to check isolation) and a reference time with millisecond
// precision, the precision the store keeps.
type bundle struct {
	s     store.Store
	ctx   context.Context
	acct  int64
	other int64
	now   time.Time
	seq   int // for unique fixture names
}

func newBundle(t *testing.T, open func(t *testing.T) store.Store) *bundle {
	t.Helper()
	b := &bundle{s: open(t), ctx: t.Context(), now: time.Now().Truncate(time.Millisecond)}
	var err error
	if b.acct, err = b.s.AccountEnsure(b.ctx, "acme"); err != nil {
		t.Fatalf("AccountEnsure(acme): %v", err)
	}
	if b.other, err = b.s.AccountEnsure(b.ctx, "globex"); err != nil {
		t.Fatalf("AccountEnsure(globex): %v", err)
	}
	return b
}

// ---- assertions ----

func ok(t *testing.T, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", fmt.Sprintf(what, args...), err)
	}
}

// isErr checks that err matches want (nil means no error).
func isErr(t *testing.T, err, want error, what string, args ...any) {
	t.Helper()
	if want == nil {
		ok(t, err, what, args...)
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", fmt.Sprintf(what, args...), err, want)
	}
}

func sameMS(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	if got.IsZero() != want.IsZero() || (!want.IsZero() && got.UnixMilli() != want.UnixMilli()) {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func equal(t *testing.T, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s = %#v, want %#v", what, got, want)
	}
}

// msTime normalises t to what the store gives back (epoch ms, local zone).
func msTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return time.UnixMilli(t.UnixMilli())
}

func idsOf[T any](rows []T, id func(T) int64) []int64 {
	out := make([]int64, 0, len(rows))
	for _, r := range rows {
		out = append(out, id(r))
	}
	slices.Sort(out)
	return out
}

func sorted(ids ...int64) []int64 {
	out := append([]int64{}, ids...)
	slices.Sort(out)
	return out
}

func certID(c store.Certificate) int64   { return c.ID }
func accessID(a store.CloudAccess) int64 { return a.ID }
func resourceID(r store.Resource) int64  { return r.ID }
func contactID(c store.Contact) int64    { return c.ID }
func jobID(j store.Job) int64            { return j.ID }
func workerID(w store.Worker) int64      { return w.ID }

// ---- fixtures ----

func (b *bundle) cert(t *testing.T, acct int64, name string, mod func(*store.Certificate)) store.Certificate {
	t.Helper()
	c := store.Certificate{
		AccountID:   acct,
		Name:        name,
		CertPEM:     "-----BEGIN CERTIFICATE-----\nMIIB" + name + "\n-----END CERTIFICATE-----\n",
		KeyEnc:      []byte("sealed-key-" + name),
		CommonName:  name + ".example.com",
		SANs:        []string{name + ".example.com"},
		Issuer:      "Test CA",
		OrgName:     "Acme Inc",
		Country:     "CN",
		Province:    "Zhejiang",
		City:        "Hangzhou",
		Fingerprint: "AB:CD",
		Sha2:        "EF01",
		SerialNo:    "01",
		Algorithm:   "ECDSA",
		NotBefore:   b.now.Add(-24 * time.Hour),
		NotAfter:    b.now.Add(90 * 24 * time.Hour),
	}
	if mod != nil {
		mod(&c)
	}
	ok(t, b.s.CertificateCreate(b.ctx, &c), "CertificateCreate(%s)", name)
	if c.ID == 0 {
		t.Fatalf("CertificateCreate(%s) left ID 0", name)
	}
	return c
}

func (b *bundle) access(t *testing.T, acct int64, cloud, secretID string) store.CloudAccess {
	t.Helper()
	a := store.CloudAccess{AccountID: acct, CloudName: cloud, Name: cloud + " " + secretID, SecretID: secretID,
		SecretKeyEnc: []byte("sealed-" + secretID), Config: `{"endpoint":"x"}`}
	ok(t, b.s.AccessCreate(b.ctx, &a), "AccessCreate(%s)", secretID)
	if a.ID == 0 {
		t.Fatalf("AccessCreate(%s) left ID 0", secretID)
	}
	return a
}

func (b *bundle) resource(t *testing.T, acct int64, name string, mod func(*store.Resource)) store.Resource {
	t.Helper()
	r := store.Resource{AccountID: acct, CloudName: "aliyun", CloudProduct: "cdn", Domain: name + ".example.com",
		Name: name, RegionID: "cn-hangzhou", InstanceID: "i-" + name, ListenerPort: "443", Config: `{"k":"v"}`}
	if mod != nil {
		mod(&r)
	}
	ok(t, b.s.ResourceCreate(b.ctx, &r), "ResourceCreate(%s)", name)
	if r.ID == 0 {
		t.Fatalf("ResourceCreate(%s) left ID 0", name)
	}
	return r
}

// resources creates n resources named prefix-0… in acct.
func (b *bundle) resources(t *testing.T, acct int64, prefix string, n int) []store.Resource {
	t.Helper()
	out := make([]store.Resource, n)
	for i := range out {
		out[i] = b.resource(t, acct, fmt.Sprintf("%s-%d", prefix, i), nil)
	}
	return out
}

func (b *bundle) contact(t *testing.T, acct int64, name, email, mobile string) store.Contact {
	t.Helper()
	c := store.Contact{AccountID: acct, Name: name, Email: email, Mobile: mobile, Webhooks: []string{"https://hooks.example/" + name}}
	ok(t, b.s.ContactCreate(b.ctx, &c), "ContactCreate(%s)", name)
	if c.ID == 0 {
		t.Fatalf("ContactCreate(%s) left ID 0", name)
	}
	return c
}

// job creates an editing job of acct deploying certID to each resource (one
// worker per entry; a resource may repeat) and returns it with its workers.
func (b *bundle) job(t *testing.T, acct int64, certID int64, res ...store.Resource) (store.Job, []store.Worker) {
	t.Helper()
	j := store.Job{AccountID: acct, Name: "job", JobType: "deploy", CertIDs: []int64{certID}, Config: `{}`}
	var ws []store.Worker
	for _, r := range res {
		if !slices.Contains(j.ResourceIDs, r.ID) {
			j.ResourceIDs = append(j.ResourceIDs, r.ID)
		}
		ws = append(ws, store.Worker{ResourceID: r.ID, CertID: certID, CloudName: r.CloudName, CloudProduct: r.CloudProduct})
	}
	ok(t, b.s.JobCreate(b.ctx, &j, store.WorkersOf(ws)), "JobCreate")
	if j.ID == 0 {
		t.Fatalf("JobCreate left ID 0")
	}
	return j, b.workers(t, acct, j.ID)
}

// simpleJob creates a certificate, n resources and an editing job over them.
func (b *bundle) simpleJob(t *testing.T, n int) (store.Job, []store.Worker) {
	t.Helper()
	b.seq++
	c := b.cert(t, b.acct, fmt.Sprintf("c%d", b.seq), nil)
	return b.job(t, b.acct, c.ID, b.resources(t, b.acct, fmt.Sprintf("r%d", b.seq), n)...)
}

func (b *bundle) workers(t *testing.T, acct, jobID int64) []store.Worker {
	t.Helper()
	ws, _, err := b.s.WorkerList(b.ctx, store.WorkerListParams{AccountID: acct, JobID: jobID})
	ok(t, err, "WorkerList(job %d)", jobID)
	return ws
}

func (b *bundle) worker(t *testing.T, id int64) store.Worker {
	t.Helper()
	w, err := b.s.WorkerGet(b.ctx, b.acct, id)
	ok(t, err, "WorkerGet(%d)", id)
	return w
}

func (b *bundle) getJob(t *testing.T, id int64) store.Job {
	t.Helper()
	j, err := b.s.JobGet(b.ctx, b.acct, id)
	ok(t, err, "JobGet(%d)", id)
	return j
}

// schedule moves an editing job of b.acct to pending, due at.
func (b *bundle) schedule(t *testing.T, jobID int64, at time.Time) {
	t.Helper()
	ok(t, b.s.JobSetStatus(b.ctx, store.JobSetStatusParams{AccountID: b.acct, JobID: jobID,
		From: []store.JobStatus{store.JobEditing}, To: store.JobPending, ScheduleTime: at, Now: b.now}), "JobSetStatus(%d → pending)", jobID)
}

// start schedules an editing job at b.now and starts it.
func (b *bundle) start(t *testing.T, jobID int64) {
	t.Helper()
	b.schedule(t, jobID, b.now)
	ids, err := b.s.JobStartDue(b.ctx, b.now)
	ok(t, err, "JobStartDue")
	if !slices.Contains(ids, jobID) {
		t.Fatalf("JobStartDue = %v, want it to include job %d", ids, jobID)
	}
}

func (b *bundle) claim(t *testing.T, owner string, at time.Time, limit int) []store.Worker {
	t.Helper()
	ws, err := b.s.WorkerClaimDue(b.ctx, store.WorkerClaimDueParams{Owner: owner, Now: at, LeaseUntil: at.Add(time.Minute), Limit: limit})
	ok(t, err, "WorkerClaimDue(%s)", owner)
	return ws
}

// claimOne claims one worker (Limit 1) and expects it to be id.
func (b *bundle) claimOne(t *testing.T, owner string, at time.Time, id int64) store.Worker {
	t.Helper()
	ws := b.claim(t, owner, at, 1)
	if len(ws) != 1 || ws[0].ID != id {
		t.Fatalf("WorkerClaimDue(%s) = %v, want worker %d", owner, idsOf(ws, workerID), id)
	}
	return ws[0]
}

func (b *bundle) finish(t *testing.T, w store.Worker, status store.WorkerStatus) {
	t.Helper()
	ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: status,
		Attempts: w.Attempts + 1, Now: b.now}), "WorkerFinish(%d, %s)", w.ID, status)
}

// run starts an editing job, finishes every worker with status and returns
// what JobFinishIfDone reports.
func (b *bundle) run(t *testing.T, jobID int64, status store.WorkerStatus) store.JobStatus {
	t.Helper()
	b.start(t, jobID)
	for range 100 {
		ws := b.claim(t, "runner", b.now, 100)
		if len(ws) == 0 {
			break
		}
		for _, w := range ws {
			b.finish(t, w, status)
		}
	}
	got, err := b.s.JobFinishIfDone(b.ctx, jobID, b.now)
	ok(t, err, "JobFinishIfDone(%d)", jobID)
	return got
}

// workerIn makes a one-worker job of b.acct and drives its worker to status.
func (b *bundle) workerIn(t *testing.T, status store.WorkerStatus) (store.Job, store.Worker) {
	t.Helper()
	j, ws := b.simpleJob(t, 1)
	w := ws[0]
	switch status {
	case store.WorkerEditing:
		return j, w
	case store.WorkerPending:
		b.schedule(t, j.ID, b.now.Add(time.Hour))
		return j, b.worker(t, w.ID)
	}
	b.start(t, j.ID)
	if status == store.WorkerScheduling {
		return j, b.worker(t, w.ID)
	}
	w = b.claimOne(t, "owner", b.now, w.ID)
	switch status {
	case store.WorkerProcessing:
		return j, w
	case store.WorkerSuccess, store.WorkerError:
		b.finish(t, w, status)
		return j, b.worker(t, w.ID)
	}
	b.finish(t, w, store.WorkerSuccess)
	ok(t, b.s.WorkerRequestRollback(b.ctx, b.acct, j.ID, w.ID, b.now), "WorkerRequestRollback")
	if status == store.WorkerRollback {
		return j, b.worker(t, w.ID)
	}
	w = b.claimOne(t, "owner", b.now, w.ID)
	b.finish(t, w, status)
	return j, b.worker(t, w.ID)
}
