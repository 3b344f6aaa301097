package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const profileColumns = `account_id, user_id, password_hash, reset_required, mfa_required, totp_secret_enc, created_ms, updated_ms`

// LoginProfileCreate inserts a login profile; ErrConflict if the user has one.
func (s *DB) LoginProfileCreate(ctx context.Context, p store.LoginProfile) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO login_profiles (`+profileColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		p.AccountID, p.UserID, p.PasswordHash, b2i(p.PasswordResetRequired), b2i(p.MFABindRequired), nilIfEmpty(p.TOTPSecretEnc), ms(p.Created), ms(p.Updated))
	return err
}

// LoginProfileUpdate rewrites a login profile.
func (s *DB) LoginProfileUpdate(ctx context.Context, p store.LoginProfile) error {
	n, err := s.exec(ctx, s.db, `UPDATE login_profiles SET password_hash = ?, reset_required = ?, mfa_required = ?, totp_secret_enc = ?, updated_ms = ?
		WHERE account_id = ? AND user_id = ?`, p.PasswordHash, b2i(p.PasswordResetRequired), b2i(p.MFABindRequired), nilIfEmpty(p.TOTPSecretEnc),
		ms(p.Updated), p.AccountID, p.UserID)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// LoginProfileGet returns a login profile.
func (s *DB) LoginProfileGet(ctx context.Context, accountID, userID int64) (store.LoginProfile, error) {
	var p store.LoginProfile
	var reset, mfa int
	var created, updated int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT `+profileColumns+` FROM login_profiles WHERE account_id = ? AND user_id = ?`), accountID, userID).
		Scan(&p.AccountID, &p.UserID, &p.PasswordHash, &reset, &mfa, &p.TOTPSecretEnc, &created, &updated)
	if err != nil {
		return p, s.wrap(err)
	}
	p.PasswordResetRequired, p.MFABindRequired = reset != 0, mfa != 0
	p.Created, p.Updated = fromMS(created), fromMS(updated)
	return p, nil
}

// LoginProfileDelete deletes a login profile and its user's sessions.
func (s *DB) LoginProfileDelete(ctx context.Context, accountID, userID int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM login_profiles WHERE account_id = ? AND user_id = ?`, accountID, userID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err = s.exec(ctx, tx, `DELETE FROM console_sessions WHERE account_id = ? AND user_id = ?`, accountID, userID)
		return err
	})
}

// ConsoleSessionCreate inserts a session.
func (s *DB) ConsoleSessionCreate(ctx context.Context, cs store.ConsoleSession) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO console_sessions (id_hash, account_id, user_id, csrf, source, created_ms, last_seen_ms, expires_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, cs.IDHash, cs.AccountID, cs.UserID, cs.CSRF, cs.Source, ms(cs.Created), ms(cs.LastSeen), ms(cs.Expires))
	return err
}

// ConsoleSessionGet returns a session by the hash of its token.
func (s *DB) ConsoleSessionGet(ctx context.Context, idHash string) (store.ConsoleSession, error) {
	var cs store.ConsoleSession
	var created, seen, expires int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id_hash, account_id, user_id, csrf, source, created_ms, last_seen_ms, expires_ms
		FROM console_sessions WHERE id_hash = ?`), idHash).Scan(&cs.IDHash, &cs.AccountID, &cs.UserID, &cs.CSRF, &cs.Source, &created, &seen, &expires)
	if err != nil {
		return cs, s.wrap(err)
	}
	cs.Created, cs.LastSeen, cs.Expires = fromMS(created), fromMS(seen), fromMS(expires)
	return cs, nil
}

// ConsoleSessionTouch records that a session was used.
func (s *DB) ConsoleSessionTouch(ctx context.Context, idHash string, lastSeen time.Time) error {
	n, err := s.exec(ctx, s.db, `UPDATE console_sessions SET last_seen_ms = ? WHERE id_hash = ?`, ms(lastSeen), idHash)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// ConsoleSessionDelete deletes a session (signing out).
func (s *DB) ConsoleSessionDelete(ctx context.Context, idHash string) error {
	n, err := s.exec(ctx, s.db, `DELETE FROM console_sessions WHERE id_hash = ?`, idHash)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// ConsoleSessionDeleteUser deletes every session of a user.
func (s *DB) ConsoleSessionDeleteUser(ctx context.Context, accountID, userID int64) (int64, error) {
	return s.exec(ctx, s.db, `DELETE FROM console_sessions WHERE account_id = ? AND user_id = ?`, accountID, userID)
}

// ConsoleSessionPurge deletes expired and idle sessions.
func (s *DB) ConsoleSessionPurge(ctx context.Context, now, idleBefore time.Time) (int64, error) {
	return s.exec(ctx, s.db, `DELETE FROM console_sessions WHERE expires_ms <= ? OR last_seen_ms < ?`, ms(now), ms(idleBefore))
}

func nilIfEmpty(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
