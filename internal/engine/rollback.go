package engine

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/certfleet/certfleet/internal/deploy"
	"github.com/certfleet/certfleet/internal/secret"
	"github.com/certfleet/certfleet/internal/store"
)

// previous is what a worker records before deploying, sealed at rest.
type previous struct {
	// Unchanged means the resource already held the certificate: nothing to undo.
	Unchanged bool   `json:",omitempty"`
	Data      []byte `json:",omitempty"`
}

func (e *Engine) record(ctx context.Context, w *store.Worker, resourceCertID int64, p previous) error {
	b, _ := json.Marshal(p)
	sealed := e.box.Seal(b, secret.PurposePrevious)
	err := e.store.WorkerRecordPrevious(ctx, store.WorkerRecordPreviousParams{ID: w.ID, LeaseToken: w.LeaseToken,
		ResourceCertID: resourceCertID, PreviousEnc: sealed, Unchanged: p.Unchanged})
	if err != nil {
		return fmt.Errorf("engine: record previous state: %w", err)
	}
	w.HasPrevious, w.PreviousEnc, w.ResourceCertID = true, sealed, resourceCertID
	return nil
}

// recordLater keeps the previous state in w, to be written with the
// worker's outcome (one transaction fewer per worker). Only for states that
// a retry after a crash would compute again the same way: the resource's
// current certificate, "unchanged", or what Deploy itself returned.
func (e *Engine) recordLater(w *store.Worker, resourceCertID int64, p previous) {
	b, _ := json.Marshal(p)
	w.HasPrevious, w.PreviousEnc, w.ResourceCertID = true, e.box.Seal(b, secret.PurposePrevious), resourceCertID
	w.Unchanged, w.PreviousPending = p.Unchanged, true
}

// deploy puts req on the target; currentCert is the certificate our records
// say the resource serves now (0 = none), kept as what to restore.
func (e *Engine) deploy(ctx context.Context, d deploy.Deployer, w *store.Worker, req deploy.Request, currentCert int64) error {
	if c, ok := d.(deploy.Checker); ok {
		same, err := c.AlreadyDeployed(ctx, req)
		if err != nil {
			return err
		}
		if same {
			if !w.HasPrevious {
				e.recordLater(w, currentCert, previous{Unchanged: true})
			}
			return nil
		}
	} else if currentCert == w.CertID && !w.HasPrevious {
		// Our own record says the resource already serves this certificate.
		e.recordLater(w, currentCert, previous{Unchanged: true})
		return nil
	}
	if s, ok := d.(deploy.Snapshotter); ok && !w.HasPrevious {
		snap, err := s.Snapshot(ctx, req)
		if err != nil {
			return err
		}
		if err := e.record(ctx, w, currentCert, previous{Data: snap}); err != nil {
			return err
		}
	}
	prev, err := d.Deploy(ctx, req)
	if err != nil {
		return err
	}
	if !w.HasPrevious {
		e.recordLater(w, currentCert, previous{Data: prev})
	}
	return nil
}

// rollback undoes what the worker deployed. restored is false when there was
// nothing to undo: the worker never changed the resource, or found it
// already serving its certificate.
func (e *Engine) rollback(ctx context.Context, d deploy.Deployer, w store.Worker, req deploy.Request) (restored bool, err error) {
	if !w.HasPrevious {
		return false, nil // this worker never changed the resource
	}
	raw, err := e.box.Open(w.PreviousEnc, secret.PurposePrevious)
	if err != nil {
		return false, deploy.Permanent(fmt.Errorf("engine: open previous state: %w", err))
	}
	var p previous
	if err := json.Unmarshal(raw, &p); err != nil {
		return false, deploy.Permanent(fmt.Errorf("engine: decode previous state: %w", err))
	}
	if p.Unchanged {
		return false, nil
	}
	rb, ok := d.(deploy.Rollbacker)
	if !ok {
		return false, deploy.Permanentf("engine: %s/%s cannot roll back", w.CloudName, w.CloudProduct)
	}
	req.Bundle = deploy.Bundle{}
	if w.ResourceCertID != 0 {
		b, err := e.bundle(ctx, w.AccountID, w.ResourceCertID)
		if err != nil {
			return false, err
		}
		req.Bundle = b
	}
	return true, rb.Rollback(ctx, req, p.Data)
}
