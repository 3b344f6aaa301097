package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"

	"github.com/certfleet/certfleet/internal/egress"
	"github.com/certfleet/certfleet/internal/store"
	"github.com/certfleet/certfleet/internal/verify"
)

// PreviewItem tells whether deploying one worker would change what its
// resource serves. Its fields are PreviewDeploymentJob's, in its order.
type PreviewItem struct {
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

// previewParallel bounds the resources Preview probes at once.
const previewParallel = 16

// Preview tells, per worker of job j, whether deploying it would change
// what the resource serves, without touching any target: resources with a
// VerifyAddress are probed now (and the observation is not recorded), the
// others are judged by certfleet's records. Items are in worker order.
// Probes go through dial under the job's account's egress policy.
func Preview(ctx context.Context, st store.Store, dial *egress.Dialer, j store.Job) ([]PreviewItem, error) {
	workers, _, err := st.WorkerList(ctx, store.WorkerListParams{AccountID: j.AccountID, JobID: j.ID})
	if err != nil {
		return nil, err
	}
	ids := make([]int64, 0, len(workers))
	for _, w := range workers {
		ids = append(ids, w.ResourceID)
	}
	resources, err := st.ResourceGetMany(ctx, j.AccountID, ids)
	if err != nil {
		return nil, err
	}
	byID := map[int64]store.Resource{}
	for _, r := range resources {
		byID[r.ID] = r
	}
	sha2 := certSha2s(st, j.AccountID)
	items := make([]PreviewItem, len(workers))
	var probes []int
	for i, w := range workers {
		r, ok := byID[w.ResourceID]
		it := PreviewItem{WorkerId: w.ID, ResourceId: w.ResourceID, Domain: r.Domain, CertId: w.CertID, Source: "record"}
		if it.CertSha2, err = sha2(ctx, w.CertID); err != nil {
			return nil, err
		}
		if !ok {
			it.ObservedError = "the resource no longer exists"
			items[i] = it
			continue
		}
		if vs, _, err := verify.SplitConfig(json.RawMessage(r.Config)); err == nil && vs.Enabled() {
			it.Source = "probe"
			probes = append(probes, i)
		} else if it.ObservedSha2, err = sha2(ctx, r.CurrentCertID); err != nil {
			return nil, err
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
			o := verify.Summarize(verify.ProbeAll(ctx, dial.For(j.AccountID), vs.Addresses, r.Domain), items[i].CertSha2)
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
	return items, nil
}

// certSha2s returns a lookup of certificates' SHA-256 in an account,
// cached; "" for ID 0 or a deleted certificate.
func certSha2s(st store.Store, accountID int64) func(context.Context, int64) (string, error) {
	cache := map[int64]string{}
	return func(ctx context.Context, id int64) (string, error) {
		if id == 0 {
			return "", nil
		}
		if s, ok := cache[id]; ok {
			return s, nil
		}
		c, err := st.CertificateGet(ctx, accountID, id)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return "", err
		}
		cache[id] = c.Sha2
		return c.Sha2, nil
	}
}
