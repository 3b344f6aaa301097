package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testDiscovery(t *testing.T, setup func(t *testing.T) *bundle) {
	found := func(key, domain string, mod func(*store.Resource)) store.Resource {
		r := store.Resource{DiscoveryKey: key, Domain: domain, RegionID: "cn-hangzhou", InstanceID: "lb-1", ListenerPort: "443",
			ListenerID: "lsn-1@443", Config: `{"Endpoint":"a"}`, EnableHTTPS: true, BoundSha2: "AB", BoundNotAfter: time.UnixMilli(1_800_000_000_000)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	sync := func(t *testing.T, b *bundle, access store.CloudAccess, product string, rs ...store.Resource) store.SyncCounts {
		t.Helper()
		c, err := b.s.ResourceSync(b.ctx, store.ResourceSyncParams{AccountID: access.AccountID, AccessID: access.ID, CloudName: "aliyun",
			CloudProduct: product, Found: rs})
		ok(t, err, "ResourceSync")
		return c
	}
	byKey := func(t *testing.T, b *bundle, acct int64) map[string]store.Resource {
		t.Helper()
		list, _, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: acct})
		ok(t, err, "ResourceList")
		m := map[string]store.Resource{}
		for _, r := range list {
			m[r.DiscoveryKey] = r
		}
		return m
	}

	t.Run("CreateUpdateGoneIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := b.access(t, b.acct, "aliyun", "AK-1")
		manual := b.resource(t, b.acct, "manual", func(r *store.Resource) { r.CloudAccessID = a.ID; r.CloudProduct = "SLB" })
		one, two := found("lb-1/443", "a.example.com", nil), found("lb-1/443/b", "b.example.com", func(r *store.Resource) { r.DefaultResource = false })
		equal(t, "first sync", sync(t, b, a, "SLB", one, two), store.SyncCounts{Found: 2, Created: 2})
		equal(t, "same again", sync(t, b, a, "SLB", one, two), store.SyncCounts{Found: 2})
		got := byKey(t, b, b.acct)
		r := got["lb-1/443"]
		equal(t, "created fields", []any{r.Name, r.Domain, r.ListenerID, r.Status, r.EnableHTTPS, r.BoundSha2, r.BoundNotAfter.UnixMilli(), r.CloudAccessID, r.CloudProduct},
			[]any{"lb-1/443", "a.example.com", "lsn-1@443", store.ResourceOnline, true, "AB", int64(1_800_000_000_000), a.ID, "SLB"})

		// A Config key added by hand survives a sync; the sync's keys refresh.
		r.Config = `{"Endpoint":"a","VerifyAddress":"1.2.3.4:443"}`
		ok(t, b.s.ResourceUpdate(b.ctx, &r), "ResourceUpdate")
		one.Config, one.BoundSha2 = `{"Endpoint":"b"}`, "CD"
		equal(t, "changed and one gone", sync(t, b, a, "SLB", one), store.SyncCounts{Found: 1, Updated: 1, Gone: 1})
		got = byKey(t, b, b.acct)
		equal(t, "merged Config", got["lb-1/443"].Config, `{"Endpoint":"b","VerifyAddress":"1.2.3.4:443"}`)
		equal(t, "gone", got["lb-1/443/b"].Status, store.ResourceGone)
		equal(t, "manual untouched", got[""].ID, manual.ID)
		equal(t, "manual status", got[""].Status, store.ResourceOnline)
		equal(t, "gone stays gone", sync(t, b, a, "SLB", one), store.SyncCounts{Found: 1})
		equal(t, "back again", sync(t, b, a, "SLB", one, two), store.SyncCounts{Found: 2, Updated: 1})
		equal(t, "online again", byKey(t, b, b.acct)["lb-1/443/b"].Status, store.ResourceOnline)
	})

	t.Run("ScopedToAccessAndProduct", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a1 := b.access(t, b.acct, "aliyun", "AK-1")
		a2 := b.access(t, b.acct, "aliyun", "AK-2")
		theirs := b.access(t, b.other, "aliyun", "AK-3")
		k := found("example.com", "example.com", nil)
		equal(t, "a1 CDN", sync(t, b, a1, "CDN", k), store.SyncCounts{Found: 1, Created: 1})
		equal(t, "a2 CDN", sync(t, b, a2, "CDN", k), store.SyncCounts{Found: 1, Created: 1})
		equal(t, "a1 DCDN", sync(t, b, a1, "DCDN", k), store.SyncCounts{Found: 1, Created: 1})
		equal(t, "other account", sync(t, b, theirs, "CDN", k), store.SyncCounts{Found: 1, Created: 1})
		// An empty listing of one pair marks only that pair's resources gone.
		equal(t, "a1 CDN empty", sync(t, b, a1, "CDN"), store.SyncCounts{Gone: 1})
		list, _, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct})
		ok(t, err, "ResourceList")
		gone := 0
		for _, r := range list {
			if r.Status == store.ResourceGone {
				gone++
				equal(t, "the gone one", []any{r.CloudAccessID, r.CloudProduct}, []any{a1.ID, "CDN"})
			}
		}
		equal(t, "gone count", gone, 1)
		ids, _, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct, ByAccess: true, AccessIDs: []int64{a2.ID}})
		ok(t, err, "ResourceList by access")
		equal(t, "by access", len(ids), 1)
		none, _, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct, ByAccess: true})
		ok(t, err, "ResourceList by no access")
		equal(t, "by no access", len(none), 0)
	})

	t.Run("RefusesBadKeys", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := b.access(t, b.acct, "aliyun", "AK-1")
		for _, rs := range [][]store.Resource{{found("", "x.example.com", nil)}, {found("k", "", nil), found("k", "", nil)}} {
			_, err := b.s.ResourceSync(b.ctx, store.ResourceSyncParams{AccountID: b.acct, AccessID: a.ID, CloudName: "aliyun", CloudProduct: "CDN", Found: rs})
			if err == nil {
				t.Errorf("ResourceSync(%v) succeeded", rs)
			}
		}
		equal(t, "nothing written", len(byKey(t, b, b.acct)), 0)
	})

	t.Run("FindCertificateBySha2", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c1 := b.cert(t, b.acct, "old", func(c *store.Certificate) { c.Sha2 = "F00D" })
		c2 := b.cert(t, b.acct, "new", func(c *store.Certificate) { c.Sha2 = "F00D" })
		b.cert(t, b.other, "theirs", func(c *store.Certificate) { c.Sha2 = "BEEF" })
		got, err := b.s.CertificateFindBySha2(b.ctx, b.acct, "F00D")
		ok(t, err, "CertificateFindBySha2")
		equal(t, "newest", got.ID, max(c1.ID, c2.ID))
		_, err = b.s.CertificateFindBySha2(b.ctx, b.acct, "BEEF")
		isErr(t, err, store.ErrNotFound, "another account's")
	})

	t.Run("AccessScanAndSweepTargets", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a1 := b.access(t, b.acct, "aliyun", "AK-1")
		a2 := b.access(t, b.other, "aliyun", "AK-2")
		page, err := b.s.AccessScan(b.ctx, 0, 1)
		ok(t, err, "AccessScan")
		equal(t, "first page", idsOf(page, accessID), []int64{a1.ID})
		page, err = b.s.AccessScan(b.ctx, a1.ID, 10)
		ok(t, err, "AccessScan")
		equal(t, "next page", idsOf(page, accessID), []int64{a2.ID})

		r1 := b.resource(t, b.acct, "r1", func(r *store.Resource) { r.CloudAccessID = a1.ID; r.CloudProduct = "CDN" })
		r2 := b.resource(t, b.acct, "r2", func(r *store.Resource) { r.CloudAccessID = a1.ID; r.CloudProduct = "CDN" })
		r3 := b.resource(t, b.acct, "r3", func(r *store.Resource) { r.CloudAccessID = a1.ID; r.CloudProduct = "SLB" })
		r4 := b.resource(t, b.acct, "r4", nil) // no credential: nothing to sweep
		c := b.cert(t, b.acct, "c", nil)
		j, _ := b.job(t, b.acct, c.ID, r1, r2, r3, r4)
		got, err := b.s.JobSweepTargets(b.ctx, j.ID)
		ok(t, err, "JobSweepTargets")
		equal(t, "sweep targets", got, []store.SweepTarget{
			{AccountID: b.acct, CloudName: "aliyun", CloudProduct: "CDN", CloudAccessID: a1.ID, ResourceID: min(r1.ID, r2.ID)},
			{AccountID: b.acct, CloudName: "aliyun", CloudProduct: "SLB", CloudAccessID: a1.ID, ResourceID: r3.ID}})
	})
}
