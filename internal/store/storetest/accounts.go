package storetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testAccounts(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("AccountEnsureIdempotent", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		for range 2 {
			id, err := b.s.AccountEnsure(b.ctx, "acme")
			ok(t, err, "AccountEnsure(acme)")
			equal(t, "AccountEnsure(acme)", id, b.acct)
		}
		if b.acct == 0 || b.other == 0 || b.acct == b.other {
			t.Errorf("account IDs acme=%d globex=%d, want distinct and non-zero", b.acct, b.other)
		}
	})

	t.Run("AccountSettings", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		a, err := b.s.AccountGet(b.ctx, b.acct)
		ok(t, err, "AccountGet")
		equal(t, "new account's settings", a.AccountSettings, store.AccountSettings{EgressAllow: []string{}})
		equal(t, "name", a.Name, "acme")
		set := store.AccountSettings{EgressAllow: []string{"10.1.0.0/16", "hooks.internal.example"}, LocalRoot: "acme"}
		ok(t, b.s.AccountSetSettings(b.ctx, b.acct, set), "AccountSetSettings")
		a, err = b.s.AccountGetByName(b.ctx, "acme")
		ok(t, err, "AccountGetByName")
		equal(t, "settings", a.AccountSettings, set)
		other, err := b.s.AccountGet(b.ctx, b.other)
		ok(t, err, "AccountGet(other)")
		equal(t, "the other account's settings", other.AccountSettings, store.AccountSettings{EgressAllow: []string{}})
		ok(t, b.s.AccountSetSettings(b.ctx, b.acct, store.AccountSettings{}), "AccountSetSettings (clear)")
		a, err = b.s.AccountGet(b.ctx, b.acct)
		ok(t, err, "AccountGet")
		equal(t, "cleared settings", a.AccountSettings, store.AccountSettings{EgressAllow: []string{}})
		_, err = b.s.AccountGet(b.ctx, 999999)
		isErr(t, err, store.ErrNotFound, "AccountGet(unknown)")
		_, err = b.s.AccountGetByName(b.ctx, "nobody")
		isErr(t, err, store.ErrNotFound, "AccountGetByName(unknown)")
		isErr(t, b.s.AccountSetSettings(b.ctx, 999999, set), store.ErrNotFound, "AccountSetSettings(unknown)")
	})

	t.Run("AccessKeyRoundTrip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		k := store.AccessKey{ID: "AK1", AccountID: b.acct, SecretEnc: []byte("sealed-1"), Status: store.AccessKeyActive, Created: b.now.Add(-time.Hour)}
		ok(t, b.s.AccessKeyUpsert(b.ctx, k), "AccessKeyUpsert")
		got, err := b.s.AccessKeyGet(b.ctx, "AK1")
		ok(t, err, "AccessKeyGet")
		equal(t, "AccessKeyGet", got, store.AccessKey{ID: "AK1", AccountID: b.acct, SecretEnc: []byte("sealed-1"), Status: store.AccessKeyActive,
			Created: msTime(k.Created)})

		// Upsert of the same ID replaces the key.
		k.SecretEnc, k.Status = []byte("sealed-2"), store.AccessKeyInactive
		ok(t, b.s.AccessKeyUpsert(b.ctx, k), "AccessKeyUpsert (replace)")
		got, err = b.s.AccessKeyGet(b.ctx, "AK1")
		ok(t, err, "AccessKeyGet")
		equal(t, "SecretEnc after replace", got.SecretEnc, []byte("sealed-2"))
		equal(t, "Status after replace", got.Status, store.AccessKeyInactive)
	})

	t.Run("AccessKeyGetUnknown", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		_, err := b.s.AccessKeyGet(b.ctx, "nope")
		isErr(t, err, store.ErrNotFound, "AccessKeyGet(unknown)")
	})

	t.Run("Nonces", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		live, old := b.now.Add(time.Minute), b.now.Add(-time.Minute)
		ok(t, b.s.NonceUse(b.ctx, "n-live", live), "NonceUse(n-live)")
		isErr(t, b.s.NonceUse(b.ctx, "n-live", live), store.ErrConflict, "NonceUse(n-live) again")
		ok(t, b.s.NonceUse(b.ctx, "n-old", old), "NonceUse(n-old)")
		isErr(t, b.s.NonceUse(b.ctx, "n-old", old), store.ErrConflict, "NonceUse(n-old) again")

		n, err := b.s.NoncePurge(b.ctx, b.now)
		ok(t, err, "NoncePurge")
		equal(t, "NoncePurge count", n, int64(1))
		ok(t, b.s.NonceUse(b.ctx, "n-old", live), "NonceUse(n-old) after purge")
		isErr(t, b.s.NonceUse(b.ctx, "n-live", live), store.ErrConflict, "NonceUse(n-live) after purge")
	})

	t.Run("NonceUseMany", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		live := b.now.Add(time.Minute)
		ok(t, b.s.NonceUse(b.ctx, "m-seen", live), "NonceUse(m-seen)")
		fresh, err := b.s.NonceUseMany(b.ctx, []store.NonceParams{{Nonce: "m-a", Expires: live}, {Nonce: "m-seen", Expires: live}, {Nonce: "m-b", Expires: live}, {Nonce: "m-a", Expires: live}})
		ok(t, err, "NonceUseMany")
		equal(t, "verdicts", fmt.Sprint(fresh), "[fresh used fresh used]")
		isErr(t, b.s.NonceUse(b.ctx, "m-b", live), store.ErrConflict, "NonceUse(m-b) after NonceUseMany")
		fresh, err = b.s.NonceUseMany(b.ctx, nil)
		ok(t, err, "NonceUseMany(nil)")
		equal(t, "verdicts of none", len(fresh), 0)
	})

	// Nonces as the API records them, with their signing time: a replay is
	// refused whatever way the engine recorded the first use (asynchronous
	// commit, memory written behind, or durably for a clock far ahead).
	t.Run("NonceUseManySigned", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		now := time.Now()
		ahead := now.Add(10 * time.Minute)
		ns := []store.NonceParams{
			{Nonce: "s-now", Signed: now, Expires: now.Add(16 * time.Minute)},
			{Nonce: "s-ahead", Signed: ahead, Expires: ahead.Add(16 * time.Minute)},
		}
		v, err := b.s.NonceUseMany(b.ctx, ns)
		ok(t, err, "NonceUseMany")
		equal(t, "verdicts", fmt.Sprint(v), "[fresh fresh]")
		v, err = b.s.NonceUseMany(b.ctx, ns)
		ok(t, err, "NonceUseMany again")
		equal(t, "verdicts of the replays", fmt.Sprint(v), "[used used]")
		isErr(t, b.s.NonceUse(b.ctx, "s-now", now.Add(16*time.Minute)), store.ErrConflict, "NonceUse(s-now)")
	})
}
