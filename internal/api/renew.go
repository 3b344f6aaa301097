package api

import (
	"context"
	"errors"
	"slices"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// errRenewalRefused: the renewal was planned but not started (logged and
// told to the contacts; the upload stands).
var errRenewalRefused = errors.New("renewal refused")

// renew deploys an uploaded renewal rec by itself (rollout.PlanRenewal): it
// creates the planned trustee job and wakes the engine, when the uploader c
// is allowed yundun-cert:CreateDeploymentJob and rec is a trusted successor
// of every certificate it replaces (rollout.TrustedSuccessor). Otherwise it
// tells the contacts why and returns errRenewalRefused. It returns the job's
// ID, 0 when there is nothing to renew.
func (a *API) renew(ctx context.Context, c *call, rec store.Certificate) (int64, error) {
	j, workers, ok, err := rollout.PlanRenewal(ctx, a.store, rec, a.opts.AutoRenew, a.opts.Clock())
	if err != nil || !ok {
		return 0, err
	}
	reason, err := a.renewRefusal(ctx, c, rec, workers)
	if err != nil {
		return 0, err
	}
	if reason != "" {
		a.log.Warn("renewal not deployed", "request_id", c.requestID, "cert_id", rec.ID, "reason", reason)
		if a.opts.Renewals != nil {
			if err := a.opts.Renewals.RenewalRefused(ctx, rec, j.ContactIDs, j.ResourceIDs, reason); err != nil {
				return 0, err
			}
			a.engine.Wake() // other nodes' dispatchers too
		}
		return 0, errRenewalRefused
	}
	if err := a.store.JobCreate(ctx, &j, store.WorkersOf(workers)); err != nil {
		return 0, err
	}
	a.engine.Wake()
	return j.ID, nil
}

// renewRefusal is why a planned renewal must not start, "" when it may.
func (a *API) renewRefusal(ctx context.Context, c *call, rec store.Certificate, workers []store.Worker) (string, error) {
	const deploy = "yundun-cert:CreateDeploymentJob"
	if !c.allowed(deploy) {
		return "the uploader " + c.principal + " is not allowed " + deploy, nil
	}
	var olds []int64
	ids := make([]int64, len(workers))
	for i, w := range workers {
		ids[i] = w.ResourceID
	}
	resources, err := a.store.ResourceGetMany(ctx, rec.AccountID, ids)
	if err != nil {
		return "", err
	}
	for _, r := range resources {
		if r.CurrentCertID != 0 && !slices.Contains(olds, r.CurrentCertID) {
			olds = append(olds, r.CurrentCertID)
		}
	}
	for _, id := range olds {
		old, err := a.store.CertificateGet(ctx, rec.AccountID, id)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return "", err
		}
		if reason := rollout.TrustedSuccessor(rec, old, a.opts.RenewTrust); reason != "" {
			return reason, nil
		}
	}
	return "", nil
}
