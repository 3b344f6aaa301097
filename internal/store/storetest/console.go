package storetest

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

func testConsole(t *testing.T, setup func(t *testing.T) *bundle) {
	t.Run("login profiles are created once, updated, read per account and deleted with their sessions", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		u := b.ramUser(t, b.acct, "alice")
		p := store.LoginProfile{AccountID: b.acct, UserID: u.ID, PasswordHash: "$argon2id$x", MFABindRequired: true, Created: b.now, Updated: b.now}
		ok(t, b.s.LoginProfileCreate(b.ctx, p), "LoginProfileCreate")
		if err := b.s.LoginProfileCreate(b.ctx, p); !errors.Is(err, store.ErrConflict) {
			t.Fatalf("second LoginProfileCreate = %v, want ErrConflict", err)
		}
		got, err := b.s.LoginProfileGet(b.ctx, b.acct, u.ID)
		ok(t, err, "LoginProfileGet")
		if got.PasswordHash != p.PasswordHash || !got.MFABindRequired || got.PasswordResetRequired || !got.Created.Equal(b.now) || len(got.TOTPSecretEnc) != 0 {
			t.Fatalf("LoginProfileGet = %+v, want %+v", got, p)
		}
		if _, err := b.s.LoginProfileGet(b.ctx, b.other, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LoginProfileGet from another account = %v, want ErrNotFound", err)
		}
		p.PasswordHash, p.PasswordResetRequired, p.TOTPSecretEnc, p.Updated = "$argon2id$y", true, []byte{1, 2, 3}, b.now.Add(time.Minute)
		ok(t, b.s.LoginProfileUpdate(b.ctx, p), "LoginProfileUpdate")
		got, err = b.s.LoginProfileGet(b.ctx, b.acct, u.ID)
		ok(t, err, "LoginProfileGet after update")
		if got.PasswordHash != "$argon2id$y" || !got.PasswordResetRequired || !bytes.Equal(got.TOTPSecretEnc, []byte{1, 2, 3}) || !got.Updated.Equal(p.Updated) {
			t.Fatalf("after update: %+v", got)
		}
		if err := b.s.LoginProfileUpdate(b.ctx, store.LoginProfile{AccountID: b.other, UserID: u.ID, Updated: b.now}); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("LoginProfileUpdate in another account = %v, want ErrNotFound", err)
		}
		s := store.ConsoleSession{IDHash: "h1", AccountID: b.acct, UserID: u.ID, CSRF: "c", Source: "127.0.0.1", Created: b.now, LastSeen: b.now, Expires: b.now.Add(time.Hour)}
		ok(t, b.s.ConsoleSessionCreate(b.ctx, s), "ConsoleSessionCreate")
		ok(t, b.s.LoginProfileDelete(b.ctx, b.acct, u.ID), "LoginProfileDelete")
		if _, err := b.s.ConsoleSessionGet(b.ctx, "h1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("session after its profile's delete: %v, want ErrNotFound", err)
		}
		if err := b.s.LoginProfileDelete(b.ctx, b.acct, u.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second LoginProfileDelete = %v, want ErrNotFound", err)
		}
	})
	t.Run("sessions round-trip, are touched, revoked per user and purged when idle or expired", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		mk := func(id string, user int64, seen, expires time.Time) {
			ok(t, b.s.ConsoleSessionCreate(b.ctx, store.ConsoleSession{IDHash: id, AccountID: b.acct, UserID: user, CSRF: "csrf-" + id,
				Source: "::1", Created: b.now, LastSeen: seen, Expires: expires}), "ConsoleSessionCreate(%s)", id)
		}
		mk("root1", 0, b.now, b.now.Add(time.Hour))
		mk("root2", 0, b.now, b.now.Add(time.Hour))
		mk("idle", 7, b.now.Add(-time.Hour), b.now.Add(time.Hour))
		mk("old", 7, b.now, b.now.Add(-time.Second))
		mk("live", 7, b.now, b.now.Add(time.Hour))
		got, err := b.s.ConsoleSessionGet(b.ctx, "root1")
		ok(t, err, "ConsoleSessionGet")
		if got.CSRF != "csrf-root1" || got.AccountID != b.acct || got.UserID != 0 || !got.Expires.Equal(b.now.Add(time.Hour)) {
			t.Fatalf("ConsoleSessionGet = %+v", got)
		}
		ok(t, b.s.ConsoleSessionTouch(b.ctx, "root1", b.now.Add(time.Minute)), "ConsoleSessionTouch")
		got, _ = b.s.ConsoleSessionGet(b.ctx, "root1")
		if !got.LastSeen.Equal(b.now.Add(time.Minute)) {
			t.Fatalf("LastSeen after touch = %v", got.LastSeen)
		}
		n, err := b.s.ConsoleSessionPurge(b.ctx, b.now, b.now.Add(-30*time.Minute))
		ok(t, err, "ConsoleSessionPurge")
		if n != 2 {
			t.Fatalf("purged %d sessions, want 2 (idle, old)", n)
		}
		n, err = b.s.ConsoleSessionDeleteUser(b.ctx, b.acct, 0)
		ok(t, err, "ConsoleSessionDeleteUser")
		if n != 2 {
			t.Fatalf("revoked %d root sessions, want 2", n)
		}
		if _, err := b.s.ConsoleSessionGet(b.ctx, "live"); err != nil {
			t.Fatalf("another user's session was revoked: %v", err)
		}
		ok(t, b.s.ConsoleSessionDelete(b.ctx, "live"), "ConsoleSessionDelete")
		if err := b.s.ConsoleSessionDelete(b.ctx, "live"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("second ConsoleSessionDelete = %v, want ErrNotFound", err)
		}
	})
}
