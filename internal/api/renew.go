package api

import (
	"context"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
)

// renew deploys an uploaded renewal c by itself (rollout.PlanRenewal): it
// creates the planned trustee job and wakes the engine. It returns the job's
// ID, 0 when there is nothing to renew.
func (a *API) renew(ctx context.Context, c store.Certificate) (int64, error) {
	j, workers, ok, err := rollout.PlanRenewal(ctx, a.store, c, a.opts.AutoRenew, a.opts.Clock())
	if err != nil || !ok {
		return 0, err
	}
	if err := a.store.JobCreate(ctx, &j, workers); err != nil {
		return 0, err
	}
	a.engine.Wake()
	return j.ID, nil
}
