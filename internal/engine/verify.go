package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/certfleet/certfleet/internal/audit"
	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// verificationFailure is a deployment that no address served within the
// grace period. It is permanent: deploying again would not change what the
// target serves. rollbackTried marks the job as rolled back.
type verificationFailure struct {
	cause         error
	rollbackTried bool
	after         string // what the automatic rollback did
}

func (v *verificationFailure) Error() string {
	msg := "verification failed: " + v.cause.Error()
	if v.after != "" {
		msg += "; " + v.after
	}
	return msg
}

func (v *verificationFailure) Unwrap() error { return v.cause }

// verifyDeploy checks, after a deployment, that every VerifyAddress serves
// the deployed certificate within the grace period. When it does not, and
// AutoRollback is on, it restores the previous state at once and checks that
// the previous certificate is served again. served is what the addresses
// served before the deployment, when this attempt was the first to touch the
// target (else nil).
func (e *Engine) verifyDeploy(ctx context.Context, log *slog.Logger, d deploy.Deployer, w store.Worker, req deploy.Request,
	vs verify.Settings, served []verify.Observation) error {
	obs, err := verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, req.Bundle.Sha2, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, req.Bundle.Sha2)
	if err == nil || ctx.Err() != nil {
		return err
	}
	vf := &verificationFailure{cause: err}
	if !vs.AutoRollback {
		return deploy.Permanent(vf)
	}
	log.Warn("verification failed; rolling back", "error", audit.RedactURLs(err.Error()))
	vf.rollbackTried = true
	restored, rerr := e.rollback(ctx, d, w, req)
	switch {
	case rerr != nil:
		vf.after = "rollback failed: " + rerr.Error()
		return deploy.Permanent(vf)
	case !restored:
		vf.rollbackTried = false
		vf.after = "nothing to roll back (the target already held this certificate before the job)"
		return deploy.Permanent(vf)
	}
	want := ""
	if w.ResourceCertID != 0 {
		b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
		if err != nil {
			vf.after = "rolled back, but the previous certificate could not be loaded to verify it: " + err.Error()
			return deploy.Permanent(vf)
		}
		want = b.Sha2
	} else if s := verify.Summarize(served, ""); s.Err == nil && s.Sha2 != "" && len(served) == len(vs.Addresses) {
		want = s.Sha2 // not deployed by certfleet, but served before
		for _, o := range served {
			if o.Sha2 != want {
				want = ""
			}
		}
	}
	if want == "" {
		vf.after = "rolled back"
		return deploy.Permanent(vf)
	}
	obs, err = verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, want, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, want)
	if err != nil {
		vf.after = "rolled back, but the previous certificate is not served either: " + err.Error()
	} else {
		vf.after = "rolled back"
	}
	return deploy.Permanent(vf)
}

// verifyRollback checks, after a requested rollback restored a previous
// certificate, that every VerifyAddress serves it again.
func (e *Engine) verifyRollback(ctx context.Context, w store.Worker, req deploy.Request, vs verify.Settings) error {
	if !vs.Enabled() || w.ResourceCertID == 0 {
		return nil
	}
	b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
	if err != nil {
		return err
	}
	log := e.log.With("job_id", w.JobID, "worker_id", w.ID, "resource_id", w.ResourceID)
	obs, err := verify.Wait(ctx, e.cfg.Egress.For(w.AccountID), vs.Addresses, req.Target.Domain, b.Sha2, vs.Grace, 0)
	e.observe(ctx, log, w.AccountID, w.ResourceID, obs, b.Sha2)
	if err != nil && ctx.Err() == nil {
		return deploy.Permanent(fmt.Errorf("verification after rollback failed: %w", err))
	}
	return err
}

// observe records what the addresses served as the resource's latest observation.
func (e *Engine) observe(ctx context.Context, log *slog.Logger, accountID, resourceID int64, obs []verify.Observation, want string) {
	if len(obs) == 0 {
		return
	}
	err := e.store.ResourceObservationPut(context.WithoutCancel(ctx), rollout.ObservationOf(accountID, resourceID, verify.Summarize(obs, want)))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		log.Warn("observation not recorded", "error", err)
	}
}
