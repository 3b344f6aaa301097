package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// ErrNoVerifyAddress is returned by Observe for a resource without VerifyAddress.
var ErrNoVerifyAddress = errors.New("rollout: the resource has no VerifyAddress in its Config")

// ObserveStore is what Observe needs of the store. A store.Store satisfies it.
type ObserveStore interface {
	CertificateGet(ctx context.Context, accountID, id int64) (store.Certificate, error)
	ResourceObservationPut(ctx context.Context, o store.ResourceObservation) error
}

// Observe probes r's VerifyAddress now, with r's Domain as SNI, and records
// the result as r's latest observation (the first address that failed, else
// the first that serves another certificate than r's current one, else the
// first). It returns every address's observation and the record. It never
// changes a target. Probes go through dial under r's account's egress
// policy (nil: the default policy as the root account). A resource deleted
// meanwhile gives store.ErrNotFound.
func Observe(ctx context.Context, st ObserveStore, dial *egress.Dialer, r store.Resource) ([]verify.Observation, store.ResourceObservation, error) {
	vs, _, err := verify.SplitConfig(json.RawMessage(r.Config))
	if err != nil {
		return nil, store.ResourceObservation{}, err
	}
	if !vs.Enabled() {
		return nil, store.ResourceObservation{}, ErrNoVerifyAddress
	}
	want := ""
	if r.CurrentCertID != 0 {
		if c, err := st.CertificateGet(ctx, r.AccountID, r.CurrentCertID); err == nil {
			want = c.Sha2
		}
	}
	obs := verify.ProbeAll(ctx, dial.For(r.AccountID), vs.Addresses, r.Domain)
	rec := ObservationOf(r.AccountID, r.ID, verify.Summarize(obs, want))
	if err := st.ResourceObservationPut(ctx, rec); err != nil {
		return obs, rec, fmt.Errorf("rollout: record observation of resource %d: %w", r.ID, err)
	}
	return obs, rec, nil
}

// ObservationOf is the stored form of a resource's summarised observation
// (its error cut to 1000 bytes; observed now when o has no time).
func ObservationOf(accountID, resourceID int64, o verify.Observation) store.ResourceObservation {
	rec := store.ResourceObservation{AccountID: accountID, ResourceID: resourceID, Sha2: o.Sha2, Subject: o.Subject,
		NotAfter: o.NotAfter, ObservedAt: o.At}
	if o.Err != nil {
		rec.Error = truncate(o.Err.Error(), 1000)
	}
	if rec.ObservedAt.IsZero() {
		rec.ObservedAt = time.Now()
	}
	return rec
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
