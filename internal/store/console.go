package store

import (
	"context"
	"time"
)

// LoginProfile is the console password of an account's root (UserID 0,
// set with `certfleet account password`) or of a RAM user (the RAM API's
// login profile).
type LoginProfile struct {
	AccountID int64
	UserID    int64 // 0: the account's root
	// PasswordHash is internal/password's PHC string; never the password.
	PasswordHash          string
	PasswordResetRequired bool
	MFABindRequired       bool
	// TOTPSecretEnc is the sealed TOTP secret of the second factor; empty: none.
	TOTPSecretEnc []byte
	Created       time.Time
	Updated       time.Time
}

// ConsoleSession is a signed-in console browser. The cookie carries a
// random token; the store keeps only its SHA-256 (IDHash).
type ConsoleSession struct {
	IDHash    string
	AccountID int64
	UserID    int64
	// CSRF is the token every write of the session must echo.
	CSRF     string
	Source   string // the address it signed in from
	Created  time.Time
	LastSeen time.Time
	// Expires is the absolute end (Created + the absolute timeout).
	Expires time.Time
}

// ConsoleStore keeps login profiles and console sessions.
//
// Errors: ErrNotFound for a profile or session that does not exist,
// ErrConflict for LoginProfileCreate of a user that has one.
type ConsoleStore interface {
	LoginProfileCreate(ctx context.Context, p LoginProfile) error
	// LoginProfileUpdate rewrites a profile's fields (by AccountID and
	// UserID); ErrNotFound if there is none.
	LoginProfileUpdate(ctx context.Context, p LoginProfile) error
	LoginProfileGet(ctx context.Context, accountID, userID int64) (LoginProfile, error)
	// LoginProfileDelete deletes a profile and every session of its user.
	LoginProfileDelete(ctx context.Context, accountID, userID int64) error

	ConsoleSessionCreate(ctx context.Context, s ConsoleSession) error
	ConsoleSessionGet(ctx context.Context, idHash string) (ConsoleSession, error)
	// ConsoleSessionTouch sets LastSeen.
	ConsoleSessionTouch(ctx context.Context, idHash string, lastSeen time.Time) error
	ConsoleSessionDelete(ctx context.Context, idHash string) error
	// ConsoleSessionDeleteUser deletes every session of a user (userID 0:
	// the root's) and returns how many.
	ConsoleSessionDeleteUser(ctx context.Context, accountID, userID int64) (int64, error)
	// ConsoleSessionPurge deletes sessions past Expires or last seen
	// before idleBefore.
	ConsoleSessionPurge(ctx context.Context, now, idleBefore time.Time) (int64, error)
}
