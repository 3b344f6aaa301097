package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/certfleet/certfleet/internal/store"
)

// NotFoundError is an ID of a job's definition that names nothing in the
// job's account.
type NotFoundError struct {
	Kind string // "Certificate", "CloudResource" or "Contact"
	ID   int64
}

func (e *NotFoundError) Error() string { return fmt.Sprintf("%s %d does not exist", e.Kind, e.ID) }

// InvalidError is a field of a job's definition that breaks a rule.
type InvalidError struct {
	Field string // the job's field, named as the API's parameter: "ResourceIds", "Strategy"
	Err   error  // what is wrong; its message names the problem, not the field
}

func (e *InvalidError) Error() string { return e.Field + ": " + e.Err.Error() }
func (e *InvalidError) Unwrap() error { return e.Err }

// Refs are the objects a job's definition names by ID, as loaded from the
// job's account; an ID with no object here does not exist.
type Refs struct {
	Certificates []store.Certificate
	Resources    []store.Resource
	Contacts     []store.Contact
}

// StrategyChange is what a Create or Update asks of a job's Strategy.
type StrategyChange struct {
	Set bool   // false: keep the job's strategy (none at creation)
	Raw string // the Strategy's JSON; on an update, "null" removes it
}

// DefineChunk is how many resources Define reads and plans at a time, and
// so how many workers it hands the store at once: it bounds the memory a
// job's creation takes, whatever the job's size.
var DefineChunk = 1000

// Plan checks the definition j (CertIDs, ResourceIDs, ContactIDs, and the
// Strategy after sc) against refs and returns the job's workers, one per
// resource in ResourceIDs order, each matched to its certificate and
// numbered into its wave. It sets j.Strategy (normalised), j.LastWave,
// j.CurrentWave (0) and j.Config. update is true for an update of an
// existing job. Errors are *NotFoundError or *InvalidError, checked in this
// order: certificates, resources, contacts exist; every resource is covered;
// the strategy is valid and fits the number of workers. Plan holds the
// whole job; Define is the same plan read and written chunk by chunk.
func Plan(j *store.Job, refs Refs, sc StrategyChange, update bool) ([]store.Worker, error) {
	certByID := make(map[int64]store.Certificate, len(refs.Certificates))
	for _, c := range refs.Certificates {
		certByID[c.ID] = c
	}
	resByID := make(map[int64]store.Resource, len(refs.Resources))
	for _, r := range refs.Resources {
		resByID[r.ID] = r
	}
	d := definition{
		cert: func(_ context.Context, id int64) (store.Certificate, bool, error) {
			c, ok := certByID[id]
			return c, ok, nil
		},
		resources: func(_ context.Context, ids []int64) ([]store.Resource, error) {
			var out []store.Resource
			for _, id := range ids {
				if r, ok := resByID[id]; ok {
					out = append(out, r)
				}
			}
			return out, nil
		},
		contacts: func(context.Context) ([]store.Contact, error) { return refs.Contacts, nil },
	}
	chunks, err := d.plan(context.Background(), j, sc, update)
	if err != nil {
		return nil, err
	}
	var workers []store.Worker
	err = chunks(func(ws []store.Worker) error {
		workers = append(workers, ws...)
		return nil
	})
	return workers, err
}

// Define checks the definition j names against j's account, as Plan does
// and with Plan's errors, and returns the job's workers as chunks of
// DefineChunk for JobCreate or JobReplace. It reads the resources twice, a
// chunk at a time: once now to check them, once more while the store
// writes the job; a resource deleted or changed in between fails that
// write with the same errors (and no job is written). Errors other than
// Plan's are the store's.
func Define(ctx context.Context, st store.Store, j *store.Job, sc StrategyChange, update bool) (store.WorkerChunks, error) {
	d := definition{
		cert: func(ctx context.Context, id int64) (store.Certificate, bool, error) {
			c, err := st.CertificateGet(ctx, j.AccountID, id)
			if errors.Is(err, store.ErrNotFound) {
				return c, false, nil
			}
			return c, err == nil, err
		},
		resources: func(ctx context.Context, ids []int64) ([]store.Resource, error) {
			return st.ResourceGetMany(ctx, j.AccountID, ids)
		},
		contacts: func(ctx context.Context) ([]store.Contact, error) {
			return st.ContactGetMany(ctx, j.AccountID, j.ContactIDs)
		},
	}
	return d.plan(ctx, j, sc, update)
}

// definition is where a plan finds the objects a job names: a certificate
// by ID (ok false: not in the account), the resources among ids (missing
// ones absent, any order), and the job's contacts.
type definition struct {
	cert      func(ctx context.Context, id int64) (store.Certificate, bool, error)
	resources func(ctx context.Context, ids []int64) ([]store.Resource, error)
	contacts  func(ctx context.Context) ([]store.Contact, error)
}

// plan is Plan's checks, in Plan's order, over j's resources a chunk at a
// time; the chunks it returns read and match each chunk again.
func (d definition) plan(ctx context.Context, j *store.Job, sc StrategyChange, update bool) (store.WorkerChunks, error) {
	cs := make([]store.Certificate, 0, len(j.CertIDs))
	for _, id := range j.CertIDs {
		c, ok, err := d.cert(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &NotFoundError{Kind: "Certificate", ID: id}
		}
		cs = append(cs, c)
	}
	// Every resource must exist before a match error counts, so the first
	// uncovered resource is kept while the later chunks are checked.
	var uncovered error
	for ids := range slices.Chunk(j.ResourceIDs, DefineChunk) {
		rs, err := d.inOrder(ctx, ids)
		if err != nil {
			return nil, err
		}
		if uncovered == nil {
			if _, err := Match(cs, rs); err != nil {
				uncovered = &InvalidError{Field: "ResourceIds", Err: err}
			}
		}
	}
	contacts, err := d.contacts(ctx)
	if err != nil {
		return nil, err
	}
	known := make(map[int64]bool, len(contacts))
	for _, ct := range contacts {
		known[ct.ID] = true
	}
	for _, id := range j.ContactIDs {
		if !known[id] {
			return nil, &NotFoundError{Kind: "Contact", ID: id}
		}
	}
	if uncovered != nil {
		return nil, uncovered
	}
	ends, err := applyStrategy(j, len(j.ResourceIDs), sc, update)
	if err != nil {
		return nil, &InvalidError{Field: "Strategy", Err: err}
	}
	j.Config = jobConfig(j.CertIDs, j.Strategy)
	resourceIDs := j.ResourceIDs
	return func(emit func([]store.Worker) error) error {
		wave, pos := WaveCursor(ends), 0
		for ids := range slices.Chunk(resourceIDs, DefineChunk) {
			rs, err := d.inOrder(ctx, ids)
			if err != nil {
				return err
			}
			workers, err := Match(cs, rs)
			if err != nil {
				return &InvalidError{Field: "ResourceIds", Err: err}
			}
			for i := range workers {
				workers[i].Wave = wave(pos)
				pos++
			}
			if err := emit(workers); err != nil {
				return err
			}
		}
		return nil
	}, nil
}

// inOrder loads the resources of ids in ids' order; the first ID that
// names no resource of the account is a *NotFoundError.
func (d definition) inOrder(ctx context.Context, ids []int64) ([]store.Resource, error) {
	rs, err := d.resources(ctx, ids)
	if err != nil {
		return nil, err
	}
	byID := make(map[int64]store.Resource, len(rs))
	for _, r := range rs {
		byID[r.ID] = r
	}
	out := make([]store.Resource, 0, len(ids))
	for _, id := range ids {
		r, ok := byID[id]
		if !ok {
			return nil, &NotFoundError{Kind: "CloudResource", ID: id}
		}
		out = append(out, r)
	}
	return out, nil
}

// applyStrategy sets j's strategy after sc and returns the ends of its
// waves for n workers (Strategy.Ends). Without a strategy every worker is
// in wave 0, as Alibaba's API has it.
func applyStrategy(j *store.Job, n int, sc StrategyChange, update bool) ([]int, error) {
	if sc.Set {
		if sc.Raw == "null" && update {
			j.Strategy = ""
		} else {
			s, err := ParseStrategy(sc.Raw)
			if err != nil {
				return nil, err
			}
			j.Strategy = s.String()
		}
	}
	j.LastWave, j.CurrentWave = 0, 0
	if j.Strategy == "" {
		return nil, nil
	}
	s, err := ParseStrategy(j.Strategy)
	if err != nil {
		return nil, err
	}
	ends, err := s.Ends(n)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		j.LastWave = len(ends) - 1
	}
	return ends, nil
}

// jobConfig is the certfleet-specific job configuration kept in a job's
// Config (DescribeDeploymentJob shows it).
func jobConfig(certIDs []int64, strategy string) string {
	jc := struct {
		CertIds      []int64 `json:"certIds"`
		ShareCertIds []int64 `json:"shareCertIds"`
		// Strategy is a staged job's normalised strategy.
		Strategy json.RawMessage `json:"strategy,omitempty"`
	}{CertIds: certIDs, ShareCertIds: []int64{}}
	if strategy != "" {
		jc.Strategy = json.RawMessage(strategy)
	}
	b, _ := json.Marshal(jc)
	return string(b)
}
