package storetest

import (
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testACME(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("Issuers", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		i := store.Issuer{AccountID: b.acct, ProductCode: "le", DirectoryURL: "https://ca/dir", KeyType: "EC256", EabHmacEnc: []byte("h")}
		ok(t, b.s.IssuerCreate(b.ctx, &i), "IssuerCreate")
		dup := i
		isErr(t, b.s.IssuerCreate(b.ctx, &dup), store.ErrConflict, "IssuerCreate(duplicate ProductCode)")
		other := store.Issuer{AccountID: b.other, ProductCode: "le", DirectoryURL: "https://ca/dir", KeyType: "EC256"}
		ok(t, b.s.IssuerCreate(b.ctx, &other), "IssuerCreate(same ProductCode, other account)")
		got, err := b.s.IssuerGet(b.ctx, b.acct, "le")
		ok(t, err, "IssuerGet")
		equal(t, "IssuerGet ID", got.ID, i.ID)
		equal(t, "IssuerGet EabHmacEnc", got.EabHmacEnc, []byte("h"))
		ok(t, b.s.IssuerSetAccount(b.ctx, i.ID, []byte("k"), "https://ca/acct/1"), "IssuerSetAccount")
		isErr(t, b.s.IssuerSetAccount(b.ctx, i.ID, []byte("k2"), "https://ca/acct/2"), store.ErrConflict, "IssuerSetAccount twice")
		got, err = b.s.IssuerGetByID(b.ctx, i.ID)
		ok(t, err, "IssuerGetByID")
		equal(t, "AccountURL", got.AccountURL, "https://ca/acct/1")
		list, err := b.s.IssuerList(b.ctx, b.acct)
		ok(t, err, "IssuerList")
		equal(t, "IssuerList", len(list), 1)

		o := store.Order{AccountID: b.acct, IssuerID: i.ID, ProductCode: "le", Domains: []string{"a.test"}, ValidateType: "FILE",
			Status: store.OrderPending, NextRun: b.now}
		ok(t, b.s.OrderCreate(b.ctx, &o), "OrderCreate")
		isErr(t, b.s.IssuerDelete(b.ctx, b.acct, "le"), store.ErrInUse, "IssuerDelete with an order in progress")
		o.Status = store.OrderCancelled
		ok(t, b.s.OrderUpdate(b.ctx, &o), "OrderUpdate")
		ok(t, b.s.IssuerDelete(b.ctx, b.acct, "le"), "IssuerDelete")
		isErr(t, b.s.IssuerDelete(b.ctx, b.acct, "le"), store.ErrNotFound, "IssuerDelete twice")
	})

	t.Run("Orders", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		o := store.Order{AccountID: b.acct, IssuerID: 1, ProductCode: "le", Domains: []string{"a.test", "b.test"}, ValidateType: "DNS",
			Manual: true, Status: store.OrderPending, NextRun: b.now.Add(time.Minute), KeyEnc: []byte("key")}
		ok(t, b.s.OrderCreate(b.ctx, &o), "OrderCreate")
		due, err := b.s.OrderDue(b.ctx, b.now, 10)
		ok(t, err, "OrderDue")
		equal(t, "OrderDue before NextRun", len(due), 0)
		next, found, err := b.s.OrderNextDue(b.ctx)
		ok(t, err, "OrderNextDue")
		equal(t, "OrderNextDue found", found, true)
		sameMS(t, "OrderNextDue", next, o.NextRun)
		due, err = b.s.OrderDue(b.ctx, b.now.Add(time.Minute), 10)
		ok(t, err, "OrderDue")
		equal(t, "OrderDue at NextRun", len(due), 1)

		stale := o
		o.Status, o.OrderURL = store.OrderVerify, "https://ca/order/1"
		o.Challenges = []store.Challenge{{Domain: "a.test", Type: "dns-01", Token: "t", RecordName: "_acme-challenge.a.test", RecordValue: "v"}}
		ok(t, b.s.OrderUpdate(b.ctx, &o), "OrderUpdate")
		isErr(t, b.s.OrderUpdate(b.ctx, &stale), store.ErrConflict, "OrderUpdate of a stale version")
		got, err := b.s.OrderGet(b.ctx, b.acct, o.ID)
		ok(t, err, "OrderGet")
		equal(t, "Challenges", got.Challenges, o.Challenges)
		equal(t, "Domains", got.Domains, o.Domains)
		equal(t, "Manual", got.Manual, true)
		_, err = b.s.OrderGet(b.ctx, b.other, o.ID)
		isErr(t, err, store.ErrNotFound, "OrderGet(another account's)")

		ok(t, b.s.ChallengeTokenPut(b.ctx, o.ID, "tok", "tok.thumb"), "ChallengeTokenPut")
		ok(t, b.s.ChallengeTokenPut(b.ctx, o.ID, "tok", "tok.thumb"), "ChallengeTokenPut again")
		ka, err := b.s.ChallengeTokenGet(b.ctx, "tok")
		ok(t, err, "ChallengeTokenGet")
		equal(t, "key authorization", ka, "tok.thumb")

		o.Status, o.CertID, o.RenewAt = store.OrderIssued, 42, b.now
		ok(t, b.s.OrderUpdate(b.ctx, &o), "OrderUpdate issued")
		renew, err := b.s.OrderRenewDue(b.ctx, b.now, 10)
		ok(t, err, "OrderRenewDue")
		equal(t, "OrderRenewDue", len(renew), 1)
		byCert, err := b.s.OrderByCerts(b.ctx, b.acct, []int64{42, 7})
		ok(t, err, "OrderByCerts")
		equal(t, "OrderByCerts", len(byCert), 1)
		total, issued, err := b.s.OrderCounts(b.ctx, b.acct, "le")
		ok(t, err, "OrderCounts")
		equal(t, "OrderCounts", [2]int64{total, issued}, [2]int64{1, 1})

		ok(t, b.s.OrderDelete(b.ctx, b.acct, o.ID), "OrderDelete")
		_, err = b.s.ChallengeTokenGet(b.ctx, "tok")
		isErr(t, err, store.ErrNotFound, "ChallengeTokenGet after the order's delete")
		isErr(t, b.s.OrderDelete(b.ctx, b.acct, o.ID), store.ErrNotFound, "OrderDelete twice")
	})

	t.Run("Csrs", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		c := store.Csr{AccountID: b.acct, Name: "web", CsrPEM: "pem", CommonName: "a.test", SANs: []string{"a.test"}, Algorithm: "RSA", KeySize: 2048}
		ok(t, b.s.CsrCreate(b.ctx, &c), "CsrCreate")
		d := store.Csr{AccountID: b.acct, Name: "api", CsrPEM: "pem", CommonName: "api.test", SANs: []string{"api.test"}, Algorithm: "ECC", KeySize: 256}
		ok(t, b.s.CsrCreate(b.ctx, &d), "CsrCreate")
		list, total, err := b.s.CsrList(b.ctx, store.CsrListParams{AccountID: b.acct, Algorithm: "RSA", Limit: 10})
		ok(t, err, "CsrList")
		equal(t, "CsrList(RSA)", [2]int64{int64(len(list)), total}, [2]int64{1, 1})
		list, _, err = b.s.CsrList(b.ctx, store.CsrListParams{AccountID: b.acct, Keyword: "API", Limit: 10})
		ok(t, err, "CsrList")
		equal(t, "CsrList(keyword)", len(list), 1)
		ok(t, b.s.CsrSetKey(b.ctx, b.acct, c.ID, []byte("k")), "CsrSetKey")
		got, err := b.s.CsrGet(b.ctx, b.acct, c.ID)
		ok(t, err, "CsrGet")
		equal(t, "KeyEnc", got.KeyEnc, []byte("k"))
		isErr(t, b.s.CsrSetKey(b.ctx, b.other, c.ID, []byte("k")), store.ErrNotFound, "CsrSetKey(another account's)")
		ok(t, b.s.CsrDelete(b.ctx, b.acct, c.ID), "CsrDelete")
		_, err = b.s.CsrGet(b.ctx, b.acct, c.ID)
		isErr(t, err, store.ErrNotFound, "CsrGet after delete")
	})
}
