package rollout

import (
	"context"
	"encoding/json"
	"slices"
	"time"

	"github.com/certfleet/certfleet/internal/certs"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// PlanRenewal plans the redeployment of an uploaded renewal c by itself:
// when c's SANs cover those of an older certificate that some resources
// currently serve, and c expires later, the plan is a trustee job (pending,
// due now) deploying c to those of the resources whose AutoRenew is on
// (Config key; autoRenew is its default) and whose Domain c covers, told to
// the contacts of the jobs that deployed the older certificate. ok is false
// when there is nothing to renew. The caller creates the job.
func PlanRenewal(ctx context.Context, st store.Store, c store.Certificate, autoRenew bool, now time.Time) (j store.Job, workers []store.Worker, ok bool, err error) {
	if len(c.SANs) == 0 {
		return j, nil, false, nil
	}
	var olds []store.Certificate
	for offset := 0; ; offset += 500 {
		list, _, err := st.CertificateList(ctx, store.CertificateListParams{AccountID: c.AccountID, NotAfterTo: c.NotAfter,
			Offset: offset, Limit: 500})
		if err != nil {
			return j, nil, false, err
		}
		for _, old := range list {
			if Renews(c, old) {
				olds = append(olds, old)
			}
		}
		if len(list) < 500 {
			break
		}
	}
	if len(olds) == 0 {
		return j, nil, false, nil
	}
	oldIDs := make([]int64, len(olds))
	for i, o := range olds {
		oldIDs[i] = o.ID
	}
	serving, _, err := st.ResourceList(ctx, store.ResourceListParams{AccountID: c.AccountID, CertIDs: oldIDs})
	if err != nil {
		return j, nil, false, err
	}
	var resources []store.Resource
	var renewed []int64 // old certificates some chosen resource serves
	for _, r := range serving {
		if !renewable(c, r, autoRenew) {
			continue
		}
		resources = append(resources, r)
		if !slices.Contains(renewed, r.CurrentCertID) {
			renewed = append(renewed, r.CurrentCertID)
		}
	}
	if len(resources) == 0 {
		return j, nil, false, nil
	}
	var contactIDs []int64
	for _, old := range renewed {
		jobs, err := st.CertificateDeployedBy(ctx, c.AccountID, old)
		if err != nil {
			return j, nil, false, err
		}
		for _, dj := range jobs {
			for _, id := range dj.ContactIDs {
				if !slices.Contains(contactIDs, id) {
					contactIDs = append(contactIDs, id)
				}
			}
		}
	}
	contacts, err := st.ContactGetMany(ctx, c.AccountID, contactIDs)
	if err != nil {
		return j, nil, false, err
	}
	contactIDs = contactIDs[:0]
	for _, ct := range contacts {
		contactIDs = append(contactIDs, ct.ID)
	}
	workers, err = Match([]store.Certificate{c}, resources)
	if err != nil {
		return j, nil, false, err
	}
	ids := make([]int64, len(resources))
	for i, r := range resources {
		ids[i] = r.ID
	}
	name := "renew " + c.Name
	if r := []rune(name); len(r) > 128 {
		name = string(r[:128])
	}
	j = store.Job{AccountID: c.AccountID, Name: name, JobType: "trustee", Status: store.JobPending, ScheduleTime: now,
		CertIDs: []int64{c.ID}, ResourceIDs: ids, ContactIDs: contactIDs, Config: jobConfig([]int64{c.ID}, "")}
	return j, workers, true, nil
}

// Renews reports whether c is a successor of old: another certificate that
// expires later and whose SANs cover every one of old's (exactly or by a
// one-label wildcard).
func Renews(c, old store.Certificate) bool {
	if old.ID == c.ID || !old.NotAfter.Before(c.NotAfter) || len(old.SANs) == 0 {
		return false
	}
	for _, o := range old.SANs {
		if !certs.Covers(c.SANs, o) {
			return false
		}
	}
	return true
}

// renewable reports whether a renewal c goes to resource r: r's AutoRenew
// (default autoRenew) is on and c covers r's Domain.
func renewable(c store.Certificate, r store.Resource, autoRenew bool) bool {
	s, _, err := verify.SplitConfig(json.RawMessage(r.Config))
	if err != nil {
		return false
	}
	if s.AutoRenew != nil {
		autoRenew = *s.AutoRenew
	}
	if !autoRenew {
		return false
	}
	_, err = Match([]store.Certificate{c}, []store.Resource{r})
	return err == nil
}
