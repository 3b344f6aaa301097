package api

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// jobInput decodes the fields shared by Create/UpdateDeploymentJob into j
// (an update keeps what it does not name) and returns the workers the job
// will have (rollout.Define), chunks the store reads while it writes the
// job; an error of theirs comes back from the store's write, for jobErr.
func (a *API) jobInput(ctx context.Context, c *call, j *store.Job, update bool) (store.WorkerChunks, error) {
	var err error
	if !update || c.params.has("Name") {
		if _, err := c.params.required("Name"); err != nil {
			return nil, err
		}
		if j.Name, err = c.params.text("Name", 128); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		name string
		dst  *[]int64
	}{{"CertIds", &j.CertIDs}, {"ResourceIds", &j.ResourceIDs}, {"ContactIds", &j.ContactIDs}} {
		if update && !c.params.has(f.name) {
			continue
		}
		if *f.dst, err = c.params.ids(f.name, true); err != nil {
			return nil, err
		}
	}
	if !update || c.params.has("ScheduleTime") {
		if j.ScheduleTime, err = c.params.epochMS("ScheduleTime"); err != nil {
			return nil, err
		}
	}
	// An update without Strategy keeps the job's; "null" removes it.
	sc := rollout.StrategyChange{Set: c.params.has("Strategy"), Raw: c.params.str("Strategy")}
	workers, err := rollout.Define(ctx, a.store, j, sc, update)
	return workers, jobErr(err)
}

// jobErr turns rollout's errors about a job's definition into API errors.
func jobErr(err error) error {
	var nf *rollout.NotFoundError
	var inv *rollout.InvalidError
	switch {
	case errors.As(err, &nf):
		return errNotFound(nf.Kind, nf.ID)
	case errors.As(err, &inv):
		return errInvalid(inv.Field, "%v", inv.Err)
	}
	return err
}

func (a *API) createDeploymentJob(ctx context.Context, c *call) (any, error) {
	jobType, err := c.params.required("JobType")
	if err != nil {
		return nil, err
	}
	if jobType != "user" && jobType != "cloud" {
		return nil, errInvalid("JobType", "%q is not user or cloud", jobType)
	}
	j := store.Job{AccountID: c.accountID, JobType: jobType, Status: store.JobEditing}
	workers, err := a.jobInput(ctx, c, &j, false)
	if err != nil {
		return nil, err
	}
	if a.opts.AutoStart {
		j.Status = store.JobPending
		if j.ScheduleTime.IsZero() || j.ScheduleTime.Before(a.opts.Clock()) {
			j.ScheduleTime = a.opts.Clock()
		}
	}
	if err := a.store.JobCreate(ctx, &j, workers); err != nil {
		return nil, jobErr(err)
	}
	if a.opts.AutoStart {
		a.engine.Wake()
	}
	return struct{ JobId int64 }{j.ID}, nil
}

func (a *API) getJob(ctx context.Context, c *call) (store.Job, error) {
	id, err := c.params.id("JobId")
	if err != nil {
		return store.Job{}, err
	}
	j, err := a.store.JobGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return j, errNotFound("DeploymentJob", id)
	}
	return j, err
}

func (a *API) updateDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	if j.Status != store.JobEditing {
		return nil, errStatus("Job %d is %s; only an editing job can be updated. Set its status to editing first.", j.ID, j.Status)
	}
	workers, err := a.jobInput(ctx, c, &j, true)
	if err != nil {
		return nil, err
	}
	if err := a.store.JobReplace(ctx, &j, workers); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errStatus("Job %d left the editing status while being updated.", j.ID)
		}
		return nil, jobErr(err)
	}
	return nil, nil
}

func (a *API) updateDeploymentJobStatus(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	s, err := c.params.required("Status")
	if err != nil {
		return nil, err
	}
	status := store.JobStatus(s)
	p, err := rollout.JobMove(j, status, a.opts.Clock())
	if err != nil {
		return nil, errInvalid("Status", "%v", err)
	}
	if err := a.store.JobSetStatus(ctx, p); err != nil {
		if errors.Is(err, store.ErrConflict) {
			cur, _ := a.store.JobGet(ctx, c.accountID, j.ID)
			return nil, errStatus("Job %d is %s; it cannot move to %s (allowed from %s).", j.ID, cur.Status, status, joinStatuses(p.From, " or "))
		}
		return nil, err
	}
	a.engine.Wake()
	return struct{ Data []any }{[]any{}}, nil
}

func (a *API) deleteDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.store.JobDelete(ctx, c.accountID, j.ID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errStatus("Job %d is processing (or rolling back); wait until it ends.", j.ID)
		}
		return nil, deleteErr(err, "DeploymentJob", j.ID)
	}
	return nil, nil
}

// jobItem is a job as DescribeDeploymentJob and ListDeploymentJob show it.
type jobItem struct {
	CertDomain   string
	CertType     string
	Config       string
	Del          int32
	EndTime      string
	GmtCreate    string
	GmtModified  string
	Id           int64
	InstanceId   string
	JobType      string
	Name         string
	ProductName  string
	Rollback     int32
	ScheduleTime string
	StartTime    string
	Status       string
	UserId       int64
	// Cancelled (certfleet's own) is 1 when CancelDeploymentJob stopped the job.
	Cancelled int32
}

func (a *API) jobItemOf(ctx context.Context, lookup *certLookup, j store.Job) (jobItem, error) {
	var domains []string
	seen := map[string]bool{}
	for _, id := range j.CertIDs {
		cert, err := lookup.get(ctx, id)
		if err != nil {
			return jobItem{}, err
		}
		if cert == nil {
			continue
		}
		for _, s := range cert.SANs {
			if !seen[s] {
				seen[s] = true
				domains = append(domains, s)
			}
		}
	}
	products := j.Products
	if len(products) == 0 {
		// Jobs from before the products column: count their workers.
		counts, err := a.store.JobStatusCounts(ctx, j.AccountID, j.ID)
		if err != nil {
			return jobItem{}, err
		}
		for _, pc := range counts.ByProduct {
			products = append(products, pc.CloudProduct)
		}
		sort.Strings(products)
	}
	rollback, cancelled := int32(0), int32(0)
	if j.Rollback {
		rollback = 1
	}
	if !j.Cancelled.IsZero() {
		cancelled = 1
	}
	return jobItem{CertDomain: strings.Join(domains, ","), CertType: "upload", Config: shownConfig(j), EndTime: msString(j.EndTime),
		GmtCreate: msString(j.Created), GmtModified: msString(j.Modified), Id: j.ID, InstanceId: "cas-job-" + j.JobType + "-" + itoa(j.ID),
		JobType: j.JobType, Name: j.Name, ProductName: strings.Join(products, ","), Rollback: rollback,
		ScheduleTime: msString(j.ScheduleTime), StartTime: msString(j.StartTime), Status: string(j.Status), UserId: j.AccountID, Cancelled: cancelled}, nil
}

func (a *API) describeDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	item, err := a.jobItemOf(ctx, a.newCertLookup(c.accountID), j)
	if err != nil {
		return nil, err
	}
	type contact struct{ Email, Id, Mobile, Name string }
	contacts, err := a.store.ContactGetMany(ctx, c.accountID, j.ContactIDs)
	if err != nil {
		return nil, err
	}
	cc := make([]contact, 0, len(contacts))
	var warnings []string
	for _, ct := range contacts {
		cc = append(cc, contact{ct.Email, itoa(ct.ID), ct.Mobile, ct.Name})
		warnings = append(warnings, a.contactWarnings(ct)...)
	}
	// Warnings is certfleet's addition: contacts no message would reach.
	return struct {
		jobItem
		CasContacts []contact
		Warnings    []string `json:",omitempty"`
	}{item, cc, warnings}, nil
}

func (a *API) listDeploymentJob(ctx context.Context, c *call) (any, error) {
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	list, total, err := a.store.JobList(ctx, store.JobListParams{AccountID: c.accountID, Status: store.JobStatus(c.params.str("Status")),
		JobType: c.params.str("JobType"), Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	lookup := a.newCertLookup(c.accountID)
	items := make([]jobItem, 0, len(list))
	for _, j := range list {
		it, err := a.jobItemOf(ctx, lookup, j)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return struct {
		CurrentPage int64
		Data        []jobItem
		ShowSize    int64
		Total       int64
	}{int64(page), items, int64(size), total}, nil
}

func (a *API) describeDeploymentJobStatus(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	counts, err := a.store.JobStatusCounts(ctx, c.accountID, j.ID)
	if err != nil {
		return nil, err
	}
	type pw struct {
		ProductName string
		Count       int64
	}
	byProduct := make([]pw, 0, len(counts.ByProduct))
	for _, pc := range counts.ByProduct {
		byProduct = append(byProduct, pw{pc.CloudProduct, pc.Count})
	}
	return struct {
		BuyCount             int64
		CertCount            int64
		CostCount            int64
		FailedCount          int64
		MatchWorkerCount     int64
		ProductWorkerCount   []pw
		ResourceCount        int64
		RollbackCount        int64
		RollbackFailedCount  int64
		RollbackSuccessCount int64
		SuccessCount         int64
		UseCount             int64
		WorkerCount          int64
	}{CertCount: int64(len(j.CertIDs)), FailedCount: counts.Failed, MatchWorkerCount: counts.Workers, ProductWorkerCount: byProduct,
		ResourceCount: int64(len(j.ResourceIDs)), RollbackCount: counts.Rollback, RollbackFailedCount: counts.RollbackFailed,
		RollbackSuccessCount: counts.RollbackSuccess, SuccessCount: counts.Success, WorkerCount: counts.Workers}, nil
}

func (a *API) listDeploymentJobCert(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	type item struct {
		Algorithm      string
		CertId         int64
		CertInstanceId string
		CertName       string
		CertOrderType  string
		CertType       string
		CommonName     string
		IsTrustee      bool
		NotAfterTime   int64
		NotBeforeTime  int64
		Sans           []string
		StatusCode     string
	}
	now := a.opts.Clock()
	items := []item{}
	for _, id := range j.CertIDs {
		cert, err := a.store.CertificateGet(ctx, c.accountID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted after the job finished
		}
		if err != nil {
			return nil, err
		}
		status := map[string]string{"ISSUED": "upload", "WILLEXPIRED": "willExpired", "EXPIRED": "expired"}[certStatus(cert.NotAfter, now)]
		items = append(items, item{cert.Algorithm, cert.ID, instanceID(cert.ID), cert.Name, "upload", "DV", cert.CommonName,
			j.JobType == "trustee", msInt(cert.NotAfter), msInt(cert.NotBefore), nonNilStrings(cert.SANs), status})
	}
	return struct{ Data []item }{items}, nil
}

func (a *API) listDeploymentJobResource(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	resources, err := a.store.ResourceGetMany(ctx, c.accountID, j.ResourceIDs)
	if err != nil {
		return nil, err
	}
	obs, err := a.observations(ctx, c.accountID, resources)
	if err != nil {
		return nil, err
	}
	lookup := a.newCertLookup(c.accountID)
	items := make([]resourceItem, 0, len(resources))
	for _, r := range resources {
		it, err := a.resourceItemOf(ctx, lookup, r, obs)
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return struct{ Data []resourceItem }{items}, nil
}

// workerItem is a worker as ListWorkerResource shows it. ErrorMessage (the
// last attempt's error), Attempts, NextRunAt and Running are certfleet's
// additions (the SDK ignores unknown fields).
type workerItem struct {
	CertDomain      string
	CertId          int64
	CertInstanceId  string
	CertName        string
	CloudName       string
	CloudProduct    string
	CloudRegion     string
	DefaultResource bool
	GmtCreate       string
	GmtModified     string
	Id              int64
	InstanceId      string
	JobId           int64
	ListenerId      string
	Port            int32
	RegionId        string
	ResourceCertId  int64
	ResourceDomain  string
	ResourceId      int64
	Status          string
	UserId          int64
	ErrorMessage    string
	Attempts        int
	// NextRunAt is when a worker waiting for a retry runs again (epoch ms,
	// 0 = not waiting); Running is true while a node holds its lease.
	NextRunAt int64
	Running   bool
}

func (a *API) listWorkerResource(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	page, size, err := c.params.page(50)
	if err != nil {
		return nil, err
	}
	list, total, err := a.store.WorkerPage(ctx, store.WorkerListParams{AccountID: c.accountID, JobID: j.ID, Status: store.WorkerStatus(c.params.str("Status")),
		CloudProduct: c.params.str("CloudProduct"), Offset: (page - 1) * size, Limit: size})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(list))
	for _, w := range list {
		ids = append(ids, w.ResourceID)
	}
	resources, err := a.store.ResourceGetMany(ctx, c.accountID, ids)
	if err != nil {
		return nil, err
	}
	byID := map[int64]store.Resource{}
	for _, r := range resources {
		byID[r.ID] = r
	}
	lookup := a.newCertLookup(c.accountID)
	items := make([]workerItem, 0, len(list))
	for _, w := range list {
		r := byID[w.ResourceID]
		it := workerItem{CertId: w.CertID, CertInstanceId: instanceID(w.CertID), CloudName: w.CloudName, CloudProduct: w.CloudProduct,
			CloudRegion: r.RegionID, GmtCreate: msString(w.Created), GmtModified: msString(w.Modified), Id: w.ID, InstanceId: r.InstanceID,
			JobId: w.JobID, RegionId: r.RegionID, ResourceCertId: w.ResourceCertID, ResourceDomain: r.Domain, ResourceId: w.ResourceID,
			Status: string(w.Status), UserId: w.AccountID, ErrorMessage: w.LastError, Attempts: w.Attempts}
		now := a.opts.Clock()
		it.Running = w.LeaseExpires.After(now)
		if w.Status == store.WorkerProcessing || w.Status == store.WorkerRollback {
			if !it.Running && w.Attempts > 0 && !w.NextRunAt.IsZero() {
				it.NextRunAt = w.NextRunAt.UnixMilli()
			}
		}
		if p, err := strconv.Atoi(r.ListenerPort); err == nil {
			it.Port = int32(p)
		}
		cert, err := lookup.get(ctx, w.CertID)
		if err != nil {
			return nil, err
		}
		if cert != nil {
			it.CertName, it.CertDomain = cert.Name, cert.CommonName
		}
		items = append(items, it)
	}
	return struct {
		CurrentPage int64
		Data        []workerItem
		ShowSize    int64
		Total       int64
	}{int64(page), items, int64(size), total}, nil
}

func (a *API) getWorker(ctx context.Context, c *call) (store.Job, store.Worker, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return j, store.Worker{}, err
	}
	id, err := c.params.id("WorkerId")
	if err != nil {
		return j, store.Worker{}, err
	}
	w, err := a.store.WorkerGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && w.JobID != j.ID) {
		return j, w, errNotFound("Worker", id)
	}
	return j, w, err
}

func (a *API) updateWorkerResourceStatus(ctx context.Context, c *call) (any, error) {
	j, w, err := a.getWorker(ctx, c)
	if err != nil {
		return nil, err
	}
	status, err := c.params.required("Status")
	if err != nil {
		return nil, err
	}
	if store.WorkerStatus(status) != store.WorkerRollback {
		return nil, errInvalid("Status", "%q is not rollback", status)
	}
	if _, ok := rollout.WorkerNext(w.Status, rollout.WorkerRollbackRequested); !ok {
		return nil, errStatus("Worker %d is %s; only a %s worker can be rolled back.", w.ID, w.Status,
			strings.Join(rollout.WorkerFrom(rollout.WorkerRollbackRequested), " or "))
	}
	if err := a.store.WorkerRequestRollback(ctx, c.accountID, j.ID, w.ID, a.opts.Clock()); err != nil {
		if errors.Is(err, store.ErrConflict) {
			cur, _ := a.store.WorkerGet(ctx, c.accountID, w.ID)
			return nil, errStatus("Worker %d is %s; only a %s worker can be rolled back.", w.ID, cur.Status,
				strings.Join(rollout.WorkerFrom(rollout.WorkerRollbackRequested), " or "))
		}
		return nil, err
	}
	a.engine.Wake()
	return struct{ Data []any }{[]any{}}, nil
}

func (a *API) deleteWorkerResource(ctx context.Context, c *call) (any, error) {
	j, w, err := a.getWorker(ctx, c)
	if err != nil {
		return nil, err
	}
	if err := a.store.WorkerDelete(ctx, c.accountID, j.ID, w.ID); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil, errStatus("Job %d is %s; workers can be deleted only while it is editing.", j.ID, j.Status)
		}
		return nil, deleteErr(err, "Worker", w.ID)
	}
	return nil, nil
}
