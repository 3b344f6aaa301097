package api

import (
	"context"
	"errors"
	"time"

	"github.com/certfleet/certfleet/internal/rollout"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// expiringWithin is how soon an observed certificate's expiry counts it in
// DescribeCloudResourceStatus's ExpiringCount.
const expiringWithin = 30 * 24 * time.Hour

// observedAddress is one address's observation as certfleet's operations show it.
type observedAddress struct {
	Address  string
	Sha2     string
	Subject  string
	NotAfter string
	Error    string
}

func observedAddresses(obs []verify.Observation) []observedAddress {
	out := make([]observedAddress, 0, len(obs))
	for _, o := range obs {
		it := observedAddress{Address: o.Address, Sha2: o.Sha2, Subject: o.Subject, NotAfter: msString(o.NotAfter)}
		if o.Err != nil {
			it.Error = o.Err.Error()
		}
		out = append(out, it)
	}
	return out
}

// checkCloudResource (certfleet's own operation) probes a resource's
// VerifyAddress now and records what it serves.
func (a *API) checkCloudResource(ctx context.Context, c *call) (any, error) {
	id, err := c.params.id("Id")
	if err != nil {
		return nil, err
	}
	r, err := a.store.ResourceGet(ctx, c.accountID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("CloudResource", id)
	}
	if err != nil {
		return nil, err
	}
	obs, rec, err := rollout.Observe(ctx, a.store, a.opts.Egress, r)
	if errors.Is(err, rollout.ErrNoVerifyAddress) {
		return nil, errInvalid("Id", "CloudResource %d has no %s in its Config; set one to check what it serves", id, verify.KeyAddress)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("CloudResource", id) // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	cert, err := a.newCertLookup(c.accountID).get(ctx, r.CurrentCertID)
	if err != nil {
		return nil, err
	}
	type data struct {
		ResourceId       int64
		Domain           string
		CertId           int64
		CertSha2         string
		ObservedSha2     string
		ObservedSubject  string
		ObservedNotAfter string
		ObservedAt       string
		ObservedError    string
		Stale            bool
		Addresses        []observedAddress
	}
	d := data{ResourceId: r.ID, Domain: r.Domain, ObservedSha2: rec.Sha2, ObservedSubject: rec.Subject, ObservedNotAfter: msString(rec.NotAfter),
		ObservedAt: msString(rec.ObservedAt), ObservedError: rec.Error, Stale: stale(rec, cert), Addresses: observedAddresses(obs)}
	if cert != nil {
		d.CertId, d.CertSha2 = cert.ID, cert.Sha2
	}
	return struct{ Data data }{d}, nil
}

// previewDeploymentJob (certfleet's own operation) tells, per worker of a
// job, whether deploying it would change what the resource serves, without
// touching any target (rollout.Preview).
func (a *API) previewDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	items, err := rollout.Preview(ctx, a.store, a.opts.Egress, j)
	if err != nil {
		return nil, err
	}
	return struct{ Data []rollout.PreviewItem }{items}, nil
}
