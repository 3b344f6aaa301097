package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

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

// Plan checks the definition j (CertIDs, ResourceIDs, ContactIDs, and the
// Strategy after sc) against refs and returns the job's workers, one per
// resource in ResourceIDs order, each matched to its certificate and
// numbered into its wave. It sets j.Strategy (normalised), j.LastWave,
// j.CurrentWave (0) and j.Config. update is true for an update of an
// existing job. Errors are *NotFoundError or *InvalidError, checked in this
// order: certificates, resources, contacts exist; every resource is covered;
// the strategy is valid and fits the number of workers.
func Plan(j *store.Job, refs Refs, sc StrategyChange, update bool) ([]store.Worker, error) {
	certByID := make(map[int64]store.Certificate, len(refs.Certificates))
	for _, c := range refs.Certificates {
		certByID[c.ID] = c
	}
	cs := make([]store.Certificate, 0, len(j.CertIDs))
	for _, id := range j.CertIDs {
		c, ok := certByID[id]
		if !ok {
			return nil, &NotFoundError{Kind: "Certificate", ID: id}
		}
		cs = append(cs, c)
	}
	resByID := make(map[int64]store.Resource, len(refs.Resources))
	for _, r := range refs.Resources {
		resByID[r.ID] = r
	}
	resources := make([]store.Resource, 0, len(j.ResourceIDs))
	for _, id := range j.ResourceIDs {
		r, ok := resByID[id]
		if !ok {
			return nil, &NotFoundError{Kind: "CloudResource", ID: id}
		}
		resources = append(resources, r)
	}
	contacts := make(map[int64]bool, len(refs.Contacts))
	for _, ct := range refs.Contacts {
		contacts[ct.ID] = true
	}
	for _, id := range j.ContactIDs {
		if !contacts[id] {
			return nil, &NotFoundError{Kind: "Contact", ID: id}
		}
	}
	workers, err := Match(cs, resources)
	if err != nil {
		return nil, &InvalidError{Field: "ResourceIds", Err: err}
	}
	if err := applyStrategy(j, workers, sc, update); err != nil {
		return nil, &InvalidError{Field: "Strategy", Err: err}
	}
	j.Config = jobConfig(j.CertIDs, j.Strategy)
	return workers, nil
}

// Define loads the objects j names from j's account and plans its workers
// (Plan). Errors other than Plan's are the store's.
func Define(ctx context.Context, st store.Store, j *store.Job, sc StrategyChange, update bool) ([]store.Worker, error) {
	var refs Refs
	for _, id := range j.CertIDs {
		c, err := st.CertificateGet(ctx, j.AccountID, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil, &NotFoundError{Kind: "Certificate", ID: id}
		}
		if err != nil {
			return nil, err
		}
		refs.Certificates = append(refs.Certificates, c)
	}
	var err error
	if refs.Resources, err = st.ResourceGetMany(ctx, j.AccountID, j.ResourceIDs); err != nil {
		return nil, err
	}
	if refs.Contacts, err = st.ContactGetMany(ctx, j.AccountID, j.ContactIDs); err != nil {
		return nil, err
	}
	return Plan(j, refs, sc, update)
}

// applyStrategy sets j's strategy after sc and numbers the workers' waves,
// in worker order. Without a strategy every worker is in wave 0, as
// Alibaba's API has it.
func applyStrategy(j *store.Job, workers []store.Worker, sc StrategyChange, update bool) error {
	if sc.Set {
		if sc.Raw == "null" && update {
			j.Strategy = ""
		} else {
			s, err := ParseStrategy(sc.Raw)
			if err != nil {
				return err
			}
			j.Strategy = s.String()
		}
	}
	j.LastWave, j.CurrentWave = 0, 0
	if j.Strategy == "" {
		for i := range workers {
			workers[i].Wave = 0
		}
		return nil
	}
	s, err := ParseStrategy(j.Strategy)
	if err != nil {
		return err
	}
	waves, last, err := s.Assign(len(workers))
	if err != nil {
		return err
	}
	for i := range workers {
		workers[i].Wave = waves[i]
	}
	j.LastWave = last
	return nil
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
