package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testCloudAccess(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("RoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a := store.CloudAccess{AccountID: b.acct, CloudName: "aliyun", Name: "prod", SecretID: "AK-1",
			SecretKeyEnc: []byte("sealed"), Config: `{"region":"cn"}`, Created: b.now.Add(-time.Hour)}
		ok(t, b.s.AccessCreate(b.ctx, &a), "AccessCreate")
		got, err := b.s.AccessGet(b.ctx, b.acct, a.ID)
		ok(t, err, "AccessGet")
		want := a
		want.Created = msTime(a.Created)
		equal(t, "AccessGet", got, want)
		_, err = b.s.AccessGet(b.ctx, b.other, a.ID)
		isErr(t, err, store.ErrNotFound, "AccessGet(another account's)")
		_, err = b.s.AccessGet(b.ctx, b.acct, a.ID+1000)
		isErr(t, err, store.ErrNotFound, "AccessGet(unknown)")
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a1 := b.access(t, b.acct, "aliyun", "AK-1")
		a2 := b.access(t, b.acct, "tencent", "AK-2")
		a3 := b.access(t, b.acct, "aliyun", "AK-3")
		b.access(t, b.other, "aliyun", "AK-4")
		cases := []struct {
			desc      string
			p         store.AccessListParams
			wantRows  int
			want      []int64 // all matches (checked when the page holds them all)
			wantTotal int64
		}{
			{desc: "all", p: store.AccessListParams{Limit: 10}, wantRows: 3, want: sorted(a1.ID, a2.ID, a3.ID), wantTotal: 3},
			{desc: "cloud name", p: store.AccessListParams{CloudName: "aliyun", Limit: 10}, wantRows: 2, want: sorted(a1.ID, a3.ID), wantTotal: 2},
			{desc: "secret ID", p: store.AccessListParams{SecretID: "AK-2", Limit: 10}, wantRows: 1, want: []int64{a2.ID}, wantTotal: 1},
			{desc: "no match", p: store.AccessListParams{CloudName: "aws", Limit: 10}, wantRows: 0, want: []int64{}, wantTotal: 0},
			{desc: "first page", p: store.AccessListParams{Limit: 2}, wantRows: 2, wantTotal: 3},
			{desc: "last page", p: store.AccessListParams{Limit: 2, Offset: 2}, wantRows: 1, wantTotal: 3},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID = b.acct
				list, total, err := b.s.AccessList(b.ctx, p)
				ok(t, err, "AccessList")
				equal(t, "rows", len(list), tc.wantRows)
				equal(t, "total", total, tc.wantTotal)
				if tc.want != nil {
					equal(t, "IDs", idsOf(list, accessID), tc.want)
				}
			})
		}
	})

	t.Run("DeleteInUse", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc string
			// job is what happens to a job on a resource using the access (nil: no job).
			job     func(t *testing.T, b *bundle, j store.Job)
			account func(b *bundle) int64 // who deletes (nil: the owner)
			want    error
		}{
			{desc: "unused", want: nil},
			{desc: "resource in an editing job", job: func(*testing.T, *bundle, store.Job) {}, want: store.ErrInUse},
			{desc: "resource in a processing job", job: func(t *testing.T, b *bundle, j store.Job) { b.start(t, j.ID) }, want: store.ErrInUse},
			{desc: "resource in a finished job", job: func(t *testing.T, b *bundle, j store.Job) { b.run(t, j.ID, store.WorkerSuccess) }, want: nil},
			{desc: "another account's, in use", job: func(*testing.T, *bundle, store.Job) {}, account: func(b *bundle) int64 { return b.other },
				want: store.ErrNotFound},
			{desc: "another account's, unused", account: func(b *bundle) int64 { return b.other }, want: store.ErrNotFound},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				a := b.access(t, b.acct, "aliyun", "AK-1")
				r := b.resource(t, b.acct, "web", func(r *store.Resource) { r.CloudAccessID = a.ID })
				if tc.job != nil {
					c := b.cert(t, b.acct, "c", nil)
					j, _ := b.job(t, b.acct, c.ID, r)
					tc.job(t, b, j)
				}
				acct := b.acct
				if tc.account != nil {
					acct = tc.account(b)
				}
				isErr(t, b.s.AccessDelete(b.ctx, acct, a.ID), tc.want, "AccessDelete")
				_, err := b.s.AccessGet(b.ctx, b.acct, a.ID)
				if tc.want == nil {
					isErr(t, err, store.ErrNotFound, "AccessGet after delete")
					isErr(t, b.s.AccessDelete(b.ctx, acct, a.ID), store.ErrNotFound, "AccessDelete again")
				} else {
					ok(t, err, "AccessGet after a refused delete")
				}
			})
		}
	})
}

func testResources(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("RoundTripAndUpdate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		r := b.resource(t, b.acct, "web", func(r *store.Resource) { r.CloudAccessID = 42 })
		got, err := b.s.ResourceGet(b.ctx, b.acct, r.ID)
		ok(t, err, "ResourceGet")
		want := r
		want.Created, want.Modified = msTime(r.Created), msTime(r.Modified)
		equal(t, "ResourceGet", got, want)
		if r.Created.IsZero() {
			t.Errorf("ResourceCreate left Created zero")
		}

		time.Sleep(2 * time.Millisecond) // so Modified moves
		u := got
		u.CloudName, u.CloudProduct, u.Domain, u.CloudAccessID = "tencent", "clb", "new.example.com", 7
		u.Name, u.RegionID, u.InstanceID, u.ListenerPort, u.Config = "renamed", "ap-guangzhou", "lb-1", "8443", `{"a":1}`
		ok(t, b.s.ResourceUpdate(b.ctx, &u), "ResourceUpdate")
		got, err = b.s.ResourceGet(b.ctx, b.acct, r.ID)
		ok(t, err, "ResourceGet after update")
		want = u
		want.Created, want.Modified = msTime(r.Created), msTime(u.Modified)
		equal(t, "ResourceGet after update", got, want)
		if !got.Modified.After(got.Created) {
			t.Errorf("Modified %v not after Created %v", got.Modified, got.Created)
		}

		missing := u
		missing.ID += 1000
		isErr(t, b.s.ResourceUpdate(b.ctx, &missing), store.ErrNotFound, "ResourceUpdate(unknown)")
	})

	t.Run("AccountIsolation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mine := b.resource(t, b.acct, "mine", nil)
		theirs := b.resource(t, b.other, "theirs", nil)
		_, err := b.s.ResourceGet(b.ctx, b.acct, theirs.ID)
		isErr(t, err, store.ErrNotFound, "ResourceGet(another account's)")
		steal := theirs
		steal.AccountID, steal.Name = b.acct, "stolen"
		isErr(t, b.s.ResourceUpdate(b.ctx, &steal), store.ErrNotFound, "ResourceUpdate(another account's)")
		isErr(t, b.s.ResourceDelete(b.ctx, b.acct, theirs.ID), store.ErrNotFound, "ResourceDelete(another account's)")
		got, err := b.s.ResourceGet(b.ctx, b.other, theirs.ID)
		ok(t, err, "ResourceGet(theirs)")
		equal(t, "their resource name", got.Name, "theirs")
		many, err := b.s.ResourceGetMany(b.ctx, b.acct, []int64{mine.ID, theirs.ID})
		ok(t, err, "ResourceGetMany")
		equal(t, "ResourceGetMany IDs", idsOf(many, resourceID), []int64{mine.ID})
		list, total, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct, Limit: 10})
		ok(t, err, "ResourceList")
		equal(t, "ResourceList IDs", idsOf(list, resourceID), []int64{mine.ID})
		equal(t, "ResourceList total", total, int64(1))
		counts, err := b.s.ResourceCountByProduct(b.ctx, b.acct)
		ok(t, err, "ResourceCountByProduct")
		equal(t, "ResourceCountByProduct", counts, []store.ProductCount{{CloudName: "aliyun", CloudProduct: "cdn", Count: 1}})
	})

	t.Run("GetMany", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		rs := b.resources(t, b.acct, "r", 3)
		cases := []struct {
			desc string
			ids  []int64
			want []int64
		}{
			{desc: "none asked", ids: nil, want: []int64{}},
			{desc: "some", ids: []int64{rs[2].ID, rs[0].ID}, want: sorted(rs[0].ID, rs[2].ID)},
			{desc: "missing ones are absent", ids: []int64{rs[1].ID, rs[1].ID + 1000}, want: []int64{rs[1].ID}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				got, err := b.s.ResourceGetMany(b.ctx, b.acct, tc.ids)
				ok(t, err, "ResourceGetMany")
				equal(t, "IDs", idsOf(got, resourceID), tc.want)
			})
		}
		got, err := b.s.ResourceGetMany(b.ctx, b.acct, []int64{rs[1].ID})
		ok(t, err, "ResourceGetMany")
		if len(got) != 1 || got[0].Name != rs[1].Name || got[0].InstanceID != rs[1].InstanceID {
			t.Errorf("ResourceGetMany = %+v, want %+v", got, rs[1])
		}
	})

	t.Run("CountByProduct", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		counts, err := b.s.ResourceCountByProduct(b.ctx, b.acct)
		ok(t, err, "ResourceCountByProduct (empty)")
		equal(t, "count rows when empty", len(counts), 0)
		for i, p := range [][2]string{{"aliyun", "cdn"}, {"aliyun", "slb"}, {"aliyun", "cdn"}, {"tencent", "clb"}, {"aliyun", "cdn"}} {
			b.resource(t, b.acct, string(rune('a'+i)), func(r *store.Resource) { r.CloudName, r.CloudProduct = p[0], p[1] })
		}
		counts, err = b.s.ResourceCountByProduct(b.ctx, b.acct)
		ok(t, err, "ResourceCountByProduct")
		equal(t, "ResourceCountByProduct", counts, []store.ProductCount{
			{CloudName: "aliyun", CloudProduct: "cdn", Count: 3},
			{CloudName: "aliyun", CloudProduct: "slb", Count: 1},
			{CloudName: "tencent", CloudProduct: "clb", Count: 1},
		})
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		web := b.resource(t, b.acct, "Web Front", func(r *store.Resource) { r.Domain, r.InstanceID = "www.shop.com", "cdn-001" })
		api := b.resource(t, b.acct, "api", func(r *store.Resource) {
			r.CloudProduct, r.Domain, r.InstanceID = "slb", "api.shop.com", "lb-50%"
		})
		edge := b.resource(t, b.acct, "edge_1", func(r *store.Resource) {
			r.CloudName, r.CloudProduct, r.Domain, r.InstanceID = "tencent", "cdn", "edge.blog.net", "ins-9"
		})
		other := b.resource(t, b.acct, "edgex1", func(r *store.Resource) {
			r.CloudName, r.CloudProduct, r.Domain, r.InstanceID = "tencent", "clb", "x.blog.net", "lb-500"
		})
		b.resource(t, b.other, "Web Front", nil)
		all := sorted(web.ID, api.ID, edge.ID, other.ID)
		cases := []struct {
			desc string
			p    store.ResourceListParams
			want []int64
		}{
			{desc: "all", want: all},
			{desc: "cloud name", p: store.ResourceListParams{CloudName: "tencent"}, want: sorted(edge.ID, other.ID)},
			{desc: "cloud product", p: store.ResourceListParams{CloudProduct: "cdn"}, want: sorted(web.ID, edge.ID)},
			{desc: "cloud name and product", p: store.ResourceListParams{CloudName: "tencent", CloudProduct: "cdn"}, want: []int64{edge.ID}},
			{desc: "keyword matches name case-insensitively", p: store.ResourceListParams{Keyword: "FRONT"}, want: []int64{web.ID}},
			{desc: "keyword matches domain", p: store.ResourceListParams{Keyword: "Blog.NET"}, want: sorted(edge.ID, other.ID)},
			{desc: "keyword matches instance ID", p: store.ResourceListParams{Keyword: "cdn-0"}, want: []int64{web.ID}},
			{desc: "percent in keyword is literal", p: store.ResourceListParams{Keyword: "50%"}, want: []int64{api.ID}},
			{desc: "underscore in keyword is literal", p: store.ResourceListParams{Keyword: "edge_"}, want: []int64{edge.ID}},
			{desc: "keyword and product", p: store.ResourceListParams{Keyword: "shop", CloudProduct: "slb"}, want: []int64{api.ID}},
			{desc: "no match", p: store.ResourceListParams{Keyword: "nothing"}, want: []int64{}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID, p.Limit = b.acct, 100
				list, total, err := b.s.ResourceList(b.ctx, p)
				ok(t, err, "ResourceList")
				equal(t, "IDs", idsOf(list, resourceID), tc.want)
				equal(t, "total", total, int64(len(tc.want)))
			})
		}
		t.Run("paging", func(t *testing.T) {
			var seen []int64
			for off := 0; off < 4; off += 3 {
				list, total, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct, Limit: 3, Offset: off})
				ok(t, err, "ResourceList(offset %d)", off)
				equal(t, "total", total, int64(4))
				equal(t, "rows", len(list), min(3, 4-off))
				seen = append(seen, idsOf(list, resourceID)...)
			}
			equal(t, "pages together", sorted(seen...), all)
		})
	})

	t.Run("ListByCurrentCert", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c1, c2, c3 := b.cert(t, b.acct, "c1", nil), b.cert(t, b.acct, "c2", nil), b.cert(t, b.acct, "c3", nil)
		r1, r2, r3 := b.resource(t, b.acct, "r1", nil), b.resource(t, b.acct, "r2", nil), b.resource(t, b.acct, "r3", nil)
		deploy := func(c store.Certificate, r store.Resource) {
			j, ws := b.job(t, b.acct, c.ID, r)
			b.start(t, j.ID)
			w := b.claimOne(t, "deployer", b.now, ws[0].ID)
			ok(t, b.s.WorkerFinish(b.ctx, store.WorkerFinishParams{ID: w.ID, LeaseToken: w.LeaseToken, Status: store.WorkerSuccess,
				Attempts: 1, Now: b.now, SetResourceCert: true, ResourceID: r.ID, ResourceCertID: c.ID}), "WorkerFinish")
		}
		deploy(c1, r1)
		deploy(c2, r2)
		_ = r3 // never deployed
		cases := []struct {
			desc string
			ids  []int64
			want []int64
		}{
			{desc: "one certificate", ids: []int64{c1.ID}, want: []int64{r1.ID}},
			{desc: "two certificates", ids: []int64{c1.ID, c2.ID}, want: sorted(r1.ID, r2.ID)},
			{desc: "certificate deployed nowhere", ids: []int64{c3.ID}, want: []int64{}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				list, total, err := b.s.ResourceList(b.ctx, store.ResourceListParams{AccountID: b.acct, CertIDs: tc.ids, Limit: 10})
				ok(t, err, "ResourceList")
				equal(t, "IDs", idsOf(list, resourceID), tc.want)
				equal(t, "total", total, int64(len(tc.want)))
			})
		}
	})

	t.Run("DeleteInUse", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc string
			job  func(t *testing.T, b *bundle, j store.Job) // nil: no job
			want error
		}{
			{desc: "unused"},
			{desc: "editing job", job: func(*testing.T, *bundle, store.Job) {}, want: store.ErrInUse},
			{desc: "pending job", job: func(t *testing.T, b *bundle, j store.Job) { b.schedule(t, j.ID, b.now.Add(time.Hour)) }, want: store.ErrInUse},
			{desc: "processing job", job: func(t *testing.T, b *bundle, j store.Job) { b.start(t, j.ID) }, want: store.ErrInUse},
			{desc: "finished job", job: func(t *testing.T, b *bundle, j store.Job) { b.run(t, j.ID, store.WorkerSuccess) }},
			{desc: "deleted job", job: func(t *testing.T, b *bundle, j store.Job) { ok(t, b.s.JobDelete(b.ctx, b.acct, j.ID), "JobDelete") }},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				r := b.resource(t, b.acct, "web", nil)
				if tc.job != nil {
					c := b.cert(t, b.acct, "c", nil)
					j, _ := b.job(t, b.acct, c.ID, r)
					tc.job(t, b, j)
				}
				isErr(t, b.s.ResourceDelete(b.ctx, b.acct, r.ID), tc.want, "ResourceDelete")
				_, err := b.s.ResourceGet(b.ctx, b.acct, r.ID)
				if tc.want == nil {
					isErr(t, err, store.ErrNotFound, "ResourceGet after delete")
					isErr(t, b.s.ResourceDelete(b.ctx, b.acct, r.ID), store.ErrNotFound, "ResourceDelete again")
				} else {
					ok(t, err, "ResourceGet after a refused delete")
				}
			})
		}
	})
}

func testContacts(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("RoundTripAndUpdate", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := store.Contact{AccountID: b.acct, Name: "Ops", Email: "ops@example.com", Mobile: "+86 100",
			Webhooks: []string{"https://a.example/hook", "https://b.example/hook"}, Created: b.now.Add(-time.Hour)}
		ok(t, b.s.ContactCreate(b.ctx, &c), "ContactCreate")
		got, err := b.s.ContactGet(b.ctx, b.acct, c.ID)
		ok(t, err, "ContactGet")
		want := c
		want.Created = msTime(c.Created)
		equal(t, "ContactGet", got, want)

		u := got
		u.Name, u.Email, u.Mobile, u.Webhooks = "Oncall", "oncall@example.com", "+86 200", nil
		ok(t, b.s.ContactUpdate(b.ctx, &u), "ContactUpdate")
		got, err = b.s.ContactGet(b.ctx, b.acct, c.ID)
		ok(t, err, "ContactGet after update")
		equal(t, "Name", got.Name, "Oncall")
		equal(t, "Email", got.Email, "oncall@example.com")
		equal(t, "Mobile", got.Mobile, "+86 200")
		equal(t, "Webhooks count", len(got.Webhooks), 0)
		sameMS(t, "Created", got.Created, c.Created)

		missing := u
		missing.ID += 1000
		isErr(t, b.s.ContactUpdate(b.ctx, &missing), store.ErrNotFound, "ContactUpdate(unknown)")
		_, err = b.s.ContactGet(b.ctx, b.acct, missing.ID)
		isErr(t, err, store.ErrNotFound, "ContactGet(unknown)")
	})

	t.Run("AccountIsolation", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mine := b.contact(t, b.acct, "mine", "me@example.com", "1")
		theirs := b.contact(t, b.other, "theirs", "them@example.com", "2")
		_, err := b.s.ContactGet(b.ctx, b.acct, theirs.ID)
		isErr(t, err, store.ErrNotFound, "ContactGet(another account's)")
		steal := theirs
		steal.AccountID, steal.Name = b.acct, "stolen"
		isErr(t, b.s.ContactUpdate(b.ctx, &steal), store.ErrNotFound, "ContactUpdate(another account's)")
		isErr(t, b.s.ContactDelete(b.ctx, b.acct, theirs.ID), store.ErrNotFound, "ContactDelete(another account's)")
		got, err := b.s.ContactGet(b.ctx, b.other, theirs.ID)
		ok(t, err, "ContactGet(theirs)")
		equal(t, "their contact name", got.Name, "theirs")
		many, err := b.s.ContactGetMany(b.ctx, b.acct, []int64{mine.ID, theirs.ID})
		ok(t, err, "ContactGetMany")
		equal(t, "ContactGetMany IDs", idsOf(many, contactID), []int64{mine.ID})
		list, total, err := b.s.ContactList(b.ctx, store.ContactListParams{AccountID: b.acct, Limit: 10})
		ok(t, err, "ContactList")
		equal(t, "ContactList IDs", idsOf(list, contactID), []int64{mine.ID})
		equal(t, "ContactList total", total, int64(1))
	})

	t.Run("GetMany", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c1 := b.contact(t, b.acct, "a", "a@example.com", "1")
		c2 := b.contact(t, b.acct, "b", "b@example.com", "2")
		b.contact(t, b.acct, "c", "c@example.com", "3")
		cases := []struct {
			desc string
			ids  []int64
			want []int64
		}{
			{desc: "none asked", ids: nil, want: []int64{}},
			{desc: "some", ids: []int64{c2.ID, c1.ID}, want: sorted(c1.ID, c2.ID)},
			{desc: "missing ones are absent", ids: []int64{c2.ID, c2.ID + 1000}, want: []int64{c2.ID}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				got, err := b.s.ContactGetMany(b.ctx, b.acct, tc.ids)
				ok(t, err, "ContactGetMany")
				equal(t, "IDs", idsOf(got, contactID), tc.want)
			})
		}
		got, err := b.s.ContactGetMany(b.ctx, b.acct, []int64{c1.ID})
		ok(t, err, "ContactGetMany")
		if len(got) != 1 || got[0].Email != c1.Email || len(got[0].Webhooks) != 1 {
			t.Errorf("ContactGetMany = %+v, want %+v", got, c1)
		}
	})

	t.Run("List", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ops := b.contact(t, b.acct, "Ops Team", "ops@shop.com", "13800000001")
		dev := b.contact(t, b.acct, "dev_lead", "dev@shop.com", "13800000002")
		sec := b.contact(t, b.acct, "devxlead", "SEC@Blog.net", "+1-555-100%")
		b.contact(t, b.other, "Ops Team", "ops@other.com", "1")
		all := sorted(ops.ID, dev.ID, sec.ID)
		cases := []struct {
			desc string
			p    store.ContactListParams
			want []int64
		}{
			{desc: "all", want: all},
			{desc: "keyword matches name case-insensitively", p: store.ContactListParams{Keyword: "ops team"}, want: []int64{ops.ID}},
			{desc: "keyword matches email", p: store.ContactListParams{Keyword: "sec@blog"}, want: []int64{sec.ID}},
			{desc: "keyword matches mobile", p: store.ContactListParams{Keyword: "0002"}, want: []int64{dev.ID}},
			{desc: "underscore in keyword is literal", p: store.ContactListParams{Keyword: "dev_"}, want: []int64{dev.ID}},
			{desc: "percent in keyword is literal", p: store.ContactListParams{Keyword: "0%"}, want: []int64{sec.ID}},
			{desc: "no match", p: store.ContactListParams{Keyword: "nobody"}, want: []int64{}},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				p := tc.p
				p.AccountID, p.Limit = b.acct, 100
				list, total, err := b.s.ContactList(b.ctx, p)
				ok(t, err, "ContactList")
				equal(t, "IDs", idsOf(list, contactID), tc.want)
				equal(t, "total", total, int64(len(tc.want)))
			})
		}
		t.Run("paging", func(t *testing.T) {
			var seen []int64
			for off := 0; off < 3; off += 2 {
				list, total, err := b.s.ContactList(b.ctx, store.ContactListParams{AccountID: b.acct, Limit: 2, Offset: off})
				ok(t, err, "ContactList(offset %d)", off)
				equal(t, "total", total, int64(3))
				equal(t, "rows", len(list), min(2, 3-off))
				seen = append(seen, idsOf(list, contactID)...)
			}
			equal(t, "pages together", sorted(seen...), all)
		})
	})

	t.Run("DeleteInUse", func(t *testing.T) {
		t.Parallel()
		cases := []struct {
			desc string
			job  func(t *testing.T, b *bundle, j store.Job) // nil: no job
			want error
		}{
			{desc: "unused"},
			{desc: "editing job", job: func(*testing.T, *bundle, store.Job) {}, want: store.ErrInUse},
			{desc: "processing job", job: func(t *testing.T, b *bundle, j store.Job) { b.start(t, j.ID) }, want: store.ErrInUse},
			{desc: "finished job", job: func(t *testing.T, b *bundle, j store.Job) { b.run(t, j.ID, store.WorkerError) }},
			{desc: "deleted job", job: func(t *testing.T, b *bundle, j store.Job) { ok(t, b.s.JobDelete(b.ctx, b.acct, j.ID), "JobDelete") }},
		}
		for _, tc := range cases {
			t.Run(tc.desc, func(t *testing.T) {
				t.Parallel()
				b := setup(t)
				ct := b.contact(t, b.acct, "ops", "ops@example.com", "1")
				if tc.job != nil {
					c := b.cert(t, b.acct, "c", nil)
					r := b.resource(t, b.acct, "web", nil)
					j := store.Job{AccountID: b.acct, Name: "notify", JobType: "deploy", CertIDs: []int64{c.ID},
						ResourceIDs: []int64{r.ID}, ContactIDs: []int64{ct.ID}, Config: `{}`}
					ok(t, b.s.JobCreate(b.ctx, &j, store.WorkersOf([]store.Worker{{ResourceID: r.ID, CertID: c.ID, CloudName: "aliyun", CloudProduct: "cdn"}})), "JobCreate")
					tc.job(t, b, j)
				}
				isErr(t, b.s.ContactDelete(b.ctx, b.acct, ct.ID), tc.want, "ContactDelete")
				_, err := b.s.ContactGet(b.ctx, b.acct, ct.ID)
				if tc.want == nil {
					isErr(t, err, store.ErrNotFound, "ContactGet after delete")
				} else {
					ok(t, err, "ContactGet after a refused delete")
				}
			})
		}
	})
}
