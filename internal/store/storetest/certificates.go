package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testCertificates(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "main", func(c *store.Certificate) {
			c.SANs = []string{"example.com", "*.example.com"}
			c.Created = b.now.Add(-time.Minute)
		})
		got, err := b.s.CertificateGet(b.ctx, b.acct, c.ID)
		ok(t, err, "CertificateGet")
		want := c
		want.NotBefore, want.NotAfter, want.Created = msTime(c.NotBefore), msTime(c.NotAfter), msTime(c.Created)
		equal(t, "CertificateGet", got, want)

		_, err = b.s.CertificateGet(b.ctx, b.acct, c.ID+1000)
		isErr(t, err, store.ErrNotFound, "CertificateGet(unknown)")
	})

	t.Run("DuplicateName", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		b.cert(t, b.acct, "dup", nil)
		c := store.Certificate{AccountID: b.acct, Name: "dup", KeyEnc: []byte("k"), SANs: []string{}}
		isErr(t, b.s.CertificateCreate(b.ctx, &c), store.ErrConflict, "CertificateCreate(dup) in the same account")
		b.cert(t, b.other, "dup", nil) // another account may use the name
	})

	t.Run("AccountIsolation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mine := b.cert(t, b.acct, "mine", nil)
		theirs := b.cert(t, b.other, "theirs", nil)
		_, err := b.s.CertificateGet(b.ctx, b.acct, theirs.ID)
		isErr(t, err, store.ErrNotFound, "CertificateGet(another account's)")
		list, total, err := b.s.CertificateList(b.ctx, store.CertificateListParams{AccountID: b.acct, Limit: 10})
		ok(t, err, "CertificateList")
		equal(t, "CertificateList IDs", idsOf(list, certID), []int64{mine.ID})
		equal(t, "CertificateList total", total, int64(1))
		isErr(t, b.s.CertificateDelete(b.ctx, b.acct, theirs.ID), store.ErrNotFound, "CertificateDelete(another account's)")
		_, err = b.s.CertificateGet(b.ctx, b.other, theirs.ID)
		ok(t, err, "CertificateGet(theirs) after a foreign delete")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		day := 24 * time.Hour
		alpha := b.cert(t, b.acct, "Alpha Site", func(c *store.Certificate) {
			c.CommonName, c.SANs, c.NotAfter = "alpha.example.com", []string{"alpha.example.com", "www.alpha.example.com"}, b.now.Add(10*day)
		})
		beta := b.cert(t, b.acct, "beta", func(c *store.Certificate) {
			c.CommonName, c.SANs, c.NotAfter = "legacy-beta.example.org", []string{"api.beta.example.org"}, b.now.Add(40*day)
		})
		gamma := b.cert(t, b.acct, "gamma 100%", func(c *store.Certificate) {
			c.CommonName, c.SANs, c.NotAfter = "gamma.test", []string{"x_y.gamma.test"}, b.now.Add(100*day)
		})
		delta := b.cert(t, b.acct, "100 percent", func(c *store.Certificate) {
			c.CommonName, c.SANs, c.NotAfter = "delta.test", []string{"xay.delta.test"}, b.now.Add(-day)
		})
		b.cert(t, b.other, "Alpha Site", nil) // never listed for acct

		cases := []struct {
			desc string
			p    store.CertificateListParams
			want []int64
		}{
			{desc: "all", want: sorted(alpha.ID, beta.ID, gamma.ID, delta.ID)},
			{desc: "keyword matches name case-insensitively", p: store.CertificateListParams{Keyword: "SITE"}, want: []int64{alpha.ID}},
			{desc: "keyword matches SAN", p: store.CertificateListParams{Keyword: "API.Beta"}, want: []int64{beta.ID}},
			{desc: "keyword matches common name", p: store.CertificateListParams{Keyword: "Legacy"}, want: []int64{beta.ID}},
			{desc: "percent in keyword is literal", p: store.CertificateListParams{Keyword: "100%"}, want: []int64{gamma.ID}},
			{desc: "underscore in keyword is literal", p: store.CertificateListParams{Keyword: "x_y"}, want: []int64{gamma.ID}},
			{desc: "keyword matches several", p: store.CertificateListParams{Keyword: ".TEST"}, want: sorted(gamma.ID, delta.ID)},
			{desc: "keyword matches nothing", p: store.CertificateListParams{Keyword: "zzz"}, want: []int64{}},
			{desc: "not after from", p: store.CertificateListParams{NotAfterFrom: b.now}, want: sorted(alpha.ID, beta.ID, gamma.ID)},
			{desc: "not after to", p: store.CertificateListParams{NotAfterTo: b.now.Add(30 * day)}, want: sorted(alpha.ID, delta.ID)},
			{desc: "not after window", p: store.CertificateListParams{NotAfterFrom: b.now, NotAfterTo: b.now.Add(50 * day)},
				want: sorted(alpha.ID, beta.ID)},
			{desc: "keyword and window", p: store.CertificateListParams{Keyword: "example", NotAfterFrom: b.now.Add(20 * day)},
				want: []int64{beta.ID}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID, p.Limit = b.acct, 100
				list, total, err := b.s.CertificateList(b.ctx, p)
				ok(t, err, "CertificateList")
				equal(t, "IDs", idsOf(list, certID), tc.want)
				equal(t, "total", total, int64(len(tc.want)))
			})
		}

		t.Run("paging", func(t *testing.T) {
			var seen []int64
			for off := 0; off < 6; off += 3 {
				list, total, err := b.s.CertificateList(b.ctx, store.CertificateListParams{AccountID: b.acct, Limit: 3, Offset: off})
				ok(t, err, "CertificateList(offset %d)", off)
				equal(t, "total", total, int64(4))
				wantLen := min(3, 4-off)
				if len(list) != wantLen {
					t.Fatalf("offset %d: %d rows, want %d", off, len(list), wantLen)
				}
				seen = append(seen, idsOf(list, certID)...)
			}
			equal(t, "pages together", sorted(seen...), sorted(alpha.ID, beta.ID, gamma.ID, delta.ID))
			list, total, err := b.s.CertificateList(b.ctx, store.CertificateListParams{AccountID: b.acct, Limit: 3, Offset: 10})
			ok(t, err, "CertificateList(past the end)")
			equal(t, "rows past the end", len(list), 0)
			equal(t, "total past the end", total, int64(4))
			list, total, err = b.s.CertificateList(b.ctx, store.CertificateListParams{AccountID: b.acct, Keyword: "test", Limit: 1})
			ok(t, err, "CertificateList(keyword, limit 1)")
			equal(t, "rows with keyword, limit 1", len(list), 1)
			equal(t, "total with keyword, limit 1", total, int64(2))
		})
	})

	t.Run("Delete", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := b.cert(t, b.acct, "gone", nil)
		ok(t, b.s.CertificateDelete(b.ctx, b.acct, c.ID), "CertificateDelete")
		_, err := b.s.CertificateGet(b.ctx, b.acct, c.ID)
		isErr(t, err, store.ErrNotFound, "CertificateGet after delete")
		isErr(t, b.s.CertificateDelete(b.ctx, b.acct, c.ID), store.ErrNotFound, "CertificateDelete again")
		b.cert(t, b.acct, "gone", nil) // the name is free again
	})

	t.Run("DeleteInUse", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc string
			// then moves the job referencing the certificate on (nil: stays editing).
			then func(t *testing.T, b *bundle, j store.Job)
			want error
		}{
			{desc: "editing job", want: store.ErrInUse},
			{desc: "pending job", then: func(t *testing.T, b *bundle, j store.Job) { b.schedule(t, j.ID, b.now.Add(time.Hour)) }, want: store.ErrInUse},
			{desc: "processing job", then: func(t *testing.T, b *bundle, j store.Job) { b.start(t, j.ID) }, want: store.ErrInUse},
			{desc: "successful job", then: func(t *testing.T, b *bundle, j store.Job) {
				equal(t, "job outcome", b.run(t, j.ID, store.WorkerSuccess), store.JobSuccess)
			}},
			{desc: "failed job", then: func(t *testing.T, b *bundle, j store.Job) {
				equal(t, "job outcome", b.run(t, j.ID, store.WorkerError), store.JobError)
			}},
			{desc: "deleted job", then: func(t *testing.T, b *bundle, j store.Job) {
				ok(t, b.s.JobDelete(b.ctx, b.acct, j.ID), "JobDelete")
			}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				c := b.cert(t, b.acct, "used", nil)
				j, _ := b.job(t, b.acct, c.ID, b.resource(t, b.acct, "web", nil))
				if tc.then != nil {
					tc.then(t, b, j)
				}
				isErr(t, b.s.CertificateDelete(b.ctx, b.acct, c.ID), tc.want, "CertificateDelete")
				_, err := b.s.CertificateGet(b.ctx, b.acct, c.ID)
				if tc.want == nil {
					isErr(t, err, store.ErrNotFound, "CertificateGet after delete")
				} else {
					ok(t, err, "CertificateGet after a refused delete")
				}
			})
		}
	})
}
