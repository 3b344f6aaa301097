package api

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/engine"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// renew redeploys an uploaded renewal by itself: when c's SANs cover those
// of an older certificate that some resources currently serve, and c
// expires later, it creates a trustee job (pending, due now) deploying c to
// those of the resources whose AutoRenew is on (Config key, default
// Options.AutoRenew), told to the contacts of the jobs that deployed the
// older certificate. It returns the job's ID, 0 when there is nothing to renew.
func (a *API) renew(ctx context.Context, c store.Certificate) (int64, error) {
	if len(c.SANs) == 0 {
		return 0, nil
	}
	var olds []store.Certificate
	for offset := 0; ; offset += 500 {
		list, _, err := a.store.CertificateList(ctx, store.CertificateListParams{AccountID: c.AccountID, NotAfterTo: c.NotAfter,
			Offset: offset, Limit: 500})
		if err != nil {
			return 0, err
		}
		for _, old := range list {
			if old.ID != c.ID && old.NotAfter.Before(c.NotAfter) && coversAll(c.SANs, old.SANs) {
				olds = append(olds, old)
			}
		}
		if len(list) < 500 {
			break
		}
	}
	if len(olds) == 0 {
		return 0, nil
	}
	oldIDs := make([]int64, len(olds))
	for i, o := range olds {
		oldIDs[i] = o.ID
	}
	serving, _, err := a.store.ResourceList(ctx, store.ResourceListParams{AccountID: c.AccountID, CertIDs: oldIDs})
	if err != nil {
		return 0, err
	}
	var resources []store.Resource
	var renewed []int64 // old certificates some chosen resource serves
	for _, r := range serving {
		s, _, err := verify.SplitConfig(json.RawMessage(r.Config))
		if err != nil {
			continue
		}
		on := a.opts.AutoRenew
		if s.AutoRenew != nil {
			on = *s.AutoRenew
		}
		if !on {
			continue
		}
		if _, err := engine.Match([]store.Certificate{c}, []store.Resource{r}); err != nil {
			continue // c does not cover this resource's Domain
		}
		resources = append(resources, r)
		if !slices.Contains(renewed, r.CurrentCertID) {
			renewed = append(renewed, r.CurrentCertID)
		}
	}
	if len(resources) == 0 {
		return 0, nil
	}
	var contactIDs []int64
	for _, old := range renewed {
		jobs, err := a.store.CertificateDeployedBy(ctx, c.AccountID, old)
		if err != nil {
			return 0, err
		}
		for _, j := range jobs {
			for _, id := range j.ContactIDs {
				if !slices.Contains(contactIDs, id) {
					contactIDs = append(contactIDs, id)
				}
			}
		}
	}
	contacts, err := a.store.ContactGetMany(ctx, c.AccountID, contactIDs)
	if err != nil {
		return 0, err
	}
	contactIDs = contactIDs[:0]
	for _, ct := range contacts {
		contactIDs = append(contactIDs, ct.ID)
	}
	workers, err := engine.Match([]store.Certificate{c}, resources)
	if err != nil {
		return 0, err
	}
	now := a.opts.Clock()
	ids := make([]int64, len(resources))
	for i, r := range resources {
		ids[i] = r.ID
	}
	name := "renew " + c.Name
	if r := []rune(name); len(r) > 128 {
		name = string(r[:128])
	}
	cfg, _ := json.Marshal(jobConfig{CertIds: []int64{c.ID}, ShareCertIds: []int64{}})
	j := store.Job{AccountID: c.AccountID, Name: name, JobType: "trustee", Status: store.JobPending, ScheduleTime: now,
		CertIDs: []int64{c.ID}, ResourceIDs: ids, ContactIDs: contactIDs, Config: string(cfg)}
	if err := a.store.JobCreate(ctx, &j, workers); err != nil {
		return 0, err
	}
	a.engine.Wake()
	return j.ID, nil
}

// coversAll reports whether sans cover every one of old (exactly or by a
// one-label wildcard).
func coversAll(sans, old []string) bool {
	if len(old) == 0 {
		return false
	}
	for _, o := range old {
		if !certs.Covers(sans, o) {
			return false
		}
	}
	return true
}
