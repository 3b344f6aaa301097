package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testObservations(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("the latest observation replaces the previous one, per account", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		probed := b.resource(t, b.acct, "probed", nil)
		never := b.resource(t, b.acct, "never", nil)
		theirs := b.resource(t, b.other, "theirs", nil)

		first := store.ResourceObservation{AccountID: b.acct, ResourceID: probed.ID, Sha2: "AA", Subject: "CN=a",
			NotAfter: b.now.Add(48 * time.Hour), ObservedAt: b.now}
		ok(t, b.s.ResourceObservationPut(b.ctx, first), "ResourceObservationPut")
		latest := store.ResourceObservation{AccountID: b.acct, ResourceID: probed.ID, ObservedAt: b.now.Add(time.Minute), Error: "connection refused"}
		ok(t, b.s.ResourceObservationPut(b.ctx, latest), "ResourceObservationPut (again)")
		isErr(t, b.s.ResourceObservationPut(b.ctx, store.ResourceObservation{AccountID: b.acct, ResourceID: theirs.ID, Sha2: "BB"}),
			store.ErrNotFound, "ResourceObservationPut(another account's resource)")

		got, err := b.s.ResourceObservationGetMany(b.ctx, b.acct, []int64{probed.ID, never.ID, theirs.ID})
		ok(t, err, "ResourceObservationGetMany")
		if len(got) != 1 {
			t.Fatalf("ResourceObservationGetMany = %+v, want only %d's", got, probed.ID)
		}
		equal(t, "latest observation", got[0], store.ResourceObservation{AccountID: b.acct, ResourceID: probed.ID,
			ObservedAt: msTime(latest.ObservedAt), Error: "connection refused"})
		none, err := b.s.ResourceObservationGetMany(b.ctx, b.other, []int64{probed.ID})
		ok(t, err, "ResourceObservationGetMany(other account)")
		equal(t, "another account's view", len(none), 0)
	})

	t.Run("stale and expiring resources are counted per product", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "served", nil) // Sha2 EF01
		soon, later := b.now.Add(24*time.Hour), b.now.Add(60*24*time.Hour)
		slb := func(r *store.Resource) { r.CloudProduct = "slb" }
		fine, staleExpiring := b.resource(t, b.acct, "fine", nil), b.resource(t, b.acct, "stale-expiring", nil)
		unreachable, slbStale := b.resource(t, b.acct, "unreachable", nil), b.resource(t, b.acct, "slb-stale", slb)
		unprobed, neverDeployed := b.resource(t, b.acct, "unprobed", nil), b.resource(t, b.acct, "never-deployed", nil)
		theirs := b.resource(t, b.other, "theirs", nil)
		// A deployment makes c their current certificate.
		j, _ := b.job(t, b.acct, c.ID, fine, staleExpiring, unreachable, slbStale, unprobed)
		b.start(t, j.ID)
		for _, w := range b.claim(t, "deployer", b.now, 10) {
			ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess,
				Attempts: 1, Now: b.now, SetResourceCert: true, ResourceID: w.ResourceID, ResourceCertID: c.ID}), "WorkerFinish(%d)", w.ID)
		}
		observe := func(acct int64, r store.Resource, sha2 string, notAfter time.Time, failed string) {
			t.Helper()
			ok(t, b.s.ResourceObservationPut(b.ctx, store.ResourceObservation{AccountID: acct, ResourceID: r.ID, Sha2: sha2,
				NotAfter: notAfter, ObservedAt: b.now, Error: failed}), "ResourceObservationPut(%s)", r.Name)
		}
		observe(b.acct, fine, "EF01", later, "")
		observe(b.acct, staleExpiring, "0000", soon, "")
		observe(b.acct, neverDeployed, "0000", later, "") // certfleet never deployed there: not stale
		observe(b.acct, unreachable, "", time.Time{}, "timeout")
		observe(b.acct, slbStale, "0000", later, "")
		observe(b.other, theirs, "0000", soon, "")

		counts, err := b.s.ResourceObservationCountByProduct(b.ctx, store.ObservationCountParams{AccountID: b.acct, ExpiringBefore: b.now.Add(7 * 24 * time.Hour)})
		ok(t, err, "ResourceObservationCountByProduct")
		equal(t, "counts", counts, []store.ObservationCount{
			{CloudName: "aliyun", CloudProduct: "cdn", Stale: 1, Expiring: 1},
			{CloudName: "aliyun", CloudProduct: "slb", Stale: 1, Expiring: 0},
		})
	})

	t.Run("ResourceScan pages every account by ID and matches Config as written", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		withConfig := func(cfg string) func(*store.Resource) { return func(r *store.Resource) { r.Config = cfg } }
		a := b.resource(t, b.acct, "a", withConfig(`{"VerifyAddress":"a.example:443"}`))
		plain := b.resource(t, b.acct, "plain", nil)
		o := b.resource(t, b.other, "o", withConfig(`{"VerifyAddress":"o.example:443"}`))
		lower := b.resource(t, b.acct, "lower", withConfig(`{"verifyaddress":"l.example:443"}`))
		pct := b.resource(t, b.other, "pct", withConfig(`{"k":"100%_done"}`))
		near := b.resource(t, b.acct, "near", withConfig(`{"k":"100xydone"}`))

		var all []int64
		for after := int64(0); ; {
			page, err := b.s.ResourceScan(b.ctx, store.ResourceScanParams{AfterID: after, Limit: 2})
			ok(t, err, "ResourceScan(after %d)", after)
			if len(page) > 2 {
				t.Fatalf("ResourceScan returned %d rows, Limit 2", len(page))
			}
			if len(page) == 0 {
				break
			}
			for _, r := range page {
				if r.ID <= after {
					t.Fatalf("ResourceScan(after %d) returned %d", after, r.ID)
				}
				all = append(all, r.ID)
				after = r.ID
			}
		}
		equal(t, "every resource once", all, sorted(a.ID, plain.ID, o.ID, lower.ID, pct.ID, near.ID))

		scan := func(contains string) []int64 {
			t.Helper()
			rs, err := b.s.ResourceScan(b.ctx, store.ResourceScanParams{ConfigContains: contains})
			ok(t, err, "ResourceScan(%q)", contains)
			return idsOf(rs, resourceID)
		}
		equal(t, "Config containing VerifyAddress", scan("VerifyAddress"), sorted(a.ID, o.ID))
		equal(t, "Config containing 100%_", scan("100%_"), []int64{pct.ID})
	})
}
