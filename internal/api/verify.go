package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/certfleet/certfleet/internal/engine"
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
	obs, rec, err := engine.Observe(ctx, a.store, r)
	if errors.Is(err, engine.ErrNoVerifyAddress) {
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

// previewParallel bounds the resources PreviewDeploymentJob probes at once.
const previewParallel = 16

// previewDeploymentJob (certfleet's own operation) tells, per worker of a
// job, whether deploying it would change what the resource serves, without
// touching any target: resources with a VerifyAddress are probed now (and the
// observation is not recorded), the others are judged by certfleet's records.
func (a *API) previewDeploymentJob(ctx context.Context, c *call) (any, error) {
	j, err := a.getJob(ctx, c)
	if err != nil {
		return nil, err
	}
	workers, _, err := a.store.WorkerList(ctx, store.WorkerListParams{AccountID: c.accountID, JobID: j.ID})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(workers))
	for _, w := range workers {
		ids = append(ids, w.ResourceID)
	}
	resources, err := a.store.ResourceGetMany(ctx, c.accountID, ids)
	if err != nil {
		return nil, err
	}
	byID := map[int64]store.Resource{}
	for _, r := range resources {
		byID[r.ID] = r
	}
	type item struct {
		WorkerId      int64
		ResourceId    int64
		Domain        string
		CertId        int64
		CertSha2      string
		ObservedSha2  string
		ObservedError string
		// Source is "probe" (VerifyAddress answered now) or "record" (the
		// certificate certfleet last deployed to the resource).
		Source      string
		WouldChange bool
	}
	lookup := a.newCertLookup(c.accountID)
	items := make([]item, len(workers))
	var probes []int
	for i, w := range workers {
		r, ok := byID[w.ResourceID]
		it := item{WorkerId: w.ID, ResourceId: w.ResourceID, Domain: r.Domain, CertId: w.CertID, Source: "record"}
		cert, err := lookup.get(ctx, w.CertID)
		if err != nil {
			return nil, err
		}
		if cert != nil {
			it.CertSha2 = cert.Sha2
		}
		if !ok {
			it.ObservedError = "the resource no longer exists"
			items[i] = it
			continue
		}
		if vs, _, err := verify.SplitConfig(json.RawMessage(r.Config)); err == nil && vs.Enabled() {
			it.Source = "probe"
			probes = append(probes, i)
		} else {
			current, err := lookup.get(ctx, r.CurrentCertID)
			if err != nil {
				return nil, err
			}
			if current != nil {
				it.ObservedSha2 = current.Sha2
			}
		}
		items[i] = it
	}
	sem := make(chan struct{}, previewParallel)
	var wg sync.WaitGroup
	for _, i := range probes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			r := byID[items[i].ResourceId]
			vs, _, _ := verify.SplitConfig(json.RawMessage(r.Config))
			o := verify.Summarize(verify.ProbeAll(ctx, vs.Addresses, r.Domain), items[i].CertSha2)
			items[i].ObservedSha2 = o.Sha2
			if o.Err != nil {
				items[i].ObservedError = o.Err.Error()
			}
		}()
	}
	wg.Wait()
	for i := range items {
		items[i].WouldChange = items[i].CertSha2 == "" || !strings.EqualFold(items[i].ObservedSha2, items[i].CertSha2)
	}
	return struct{ Data []item }{items}, nil
}
