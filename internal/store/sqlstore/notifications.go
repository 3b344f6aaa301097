package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const notificationColumns = `id, account_id, job_id, cert_id, event, channel, target, subject, body, status, attempts,
	next_attempt_ms, claim_token, last_error, created_ms, sent_ms`

func scanNotification(row interface{ Scan(...any) error }) (store.Notification, error) {
	var n store.Notification
	var next, created, sent int64
	err := row.Scan(&n.ID, &n.AccountID, &n.JobID, &n.CertID, &n.Event, &n.Channel, &n.Target, &n.Subject, &n.Body, &n.Status,
		&n.Attempts, &next, &n.ClaimToken, &n.LastError, &created, &sent)
	n.NextAttempt, n.Created, n.Sent = fromMS(next), fromMS(created), fromMS(sent)
	return n, err
}

// JobEventsDue returns ended jobs not told yet, then jobs whose rollbacks
// ended after their last rollback message (with none still running).
func (s *DB) JobEventsDue(ctx context.Context, p store.JobEventsDueParams) ([]store.JobEvent, error) {
	if p.Limit <= 0 {
		p.Limit = 100
	}
	var out []store.JobEvent
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+jobColumns+`, modified_ms FROM jobs WHERE notified = 0 AND status IN ('success', 'error')
		ORDER BY id LIMIT ?`), p.Limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	for rows.Next() {
		var mark int64
		var j store.Job
		j, err = scanJob(scanPlus{rows, &mark})
		if err != nil {
			rows.Close()
			return nil, s.wrap(err)
		}
		out = append(out, store.JobEvent{Job: j, Kind: store.JobEventKindEnd, Mark: fromMS(mark)})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	halts, err := s.jobHaltEventsDue(ctx, p.Limit)
	if err != nil {
		return nil, err
	}
	out = append(halts, out...)
	rows, err = s.db.QueryContext(ctx, s.q(`SELECT `+jobColumns+`, rollback_notified_ms FROM jobs j WHERE notified = 1 AND rollback = 1
		AND modified_ms > rollback_notified_ms
		AND EXISTS (SELECT 1 FROM workers w WHERE w.job_id = j.id AND w.status IN ('rollback_success', 'rollback_error') AND w.modified_ms > j.rollback_notified_ms)
		AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.job_id = j.id AND w.status = 'rollback')
		ORDER BY id LIMIT ?`), p.Limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	for rows.Next() {
		var since int64
		j, err := scanJob(scanPlus{rows, &since})
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, store.JobEvent{Job: j, Kind: store.JobEventKindRollback, Since: fromMS(since), Mark: j.Modified})
	}
	return out, s.wrap(rows.Err())
}

// scanPlus scans a job row followed by one more column.
type scanPlus struct {
	row   interface{ Scan(...any) error }
	extra *int64
}

func (p scanPlus) Scan(dest ...any) error { return p.row.Scan(append(dest, p.extra)...) }

// NotificationEmit records the event as told (conditionally, so only once)
// and inserts its messages, in one transaction.
func (s *DB) NotificationEmit(ctx context.Context, p store.NotificationEmitParams) error {
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int64
		var err error
		switch p.Kind {
		case store.JobEventKindEnd:
			n, err = s.exec(ctx, tx, `UPDATE jobs SET notified = 1, rollback_notified_ms = ? WHERE id = ? AND notified = 0`, ms(p.Mark), p.JobID)
		case store.JobEventKindRollback:
			n, err = s.exec(ctx, tx, `UPDATE jobs SET rollback_notified_ms = ? WHERE id = ? AND rollback_notified_ms = ?`,
				ms(p.Mark), p.JobID, ms(p.Since))
		case store.JobEventKindHalt:
			n, err = s.exec(ctx, tx, `UPDATE jobs SET halt_notified = 1 WHERE id = ? AND halted_wave > 0 AND halt_notified = 0`, p.JobID)
		case store.EmitKindExpiry:
			n, err = s.exec(ctx, tx, `INSERT INTO cert_expiry_notices (cert_id, threshold_days, created_ms) VALUES (?, ?, ?)
				ON CONFLICT DO NOTHING`, p.CertID, p.ThresholdDays, ms(p.Now))
			for _, t := range p.AlsoThresholds {
				if err != nil {
					break
				}
				_, err = s.exec(ctx, tx, `INSERT INTO cert_expiry_notices (cert_id, threshold_days, created_ms) VALUES (?, ?, ?)
					ON CONFLICT DO NOTHING`, p.CertID, t, ms(p.Now))
			}
		case store.EmitKindOnce:
			n = 1
		default:
			return fmt.Errorf("store: unknown notification emit kind %q", p.Kind)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrConflict
		}
		if len(p.Rows) == 0 {
			return nil
		}
		stmt, err := tx.PrepareContext(ctx, s.q(`INSERT INTO notifications (account_id, job_id, cert_id, event, channel, target, subject, body,
			status, attempts, next_attempt_ms, created_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?)`))
		if err != nil {
			return s.wrap(err)
		}
		defer stmt.Close()
		for _, r := range p.Rows {
			if _, err := stmt.ExecContext(ctx, r.AccountID, r.JobID, r.CertID, r.Event, r.Channel, r.Target, r.Subject, r.Body,
				ms(p.Now), ms(p.Now)); err != nil {
				return s.wrap(err)
			}
		}
		return nil
	})
}

// NotificationClaimDue claims due pending messages: each claim increments
// the claim token and pushes the next attempt to LeaseUntil, so a crashed
// sender's messages are tried again after it.
func (s *DB) NotificationClaimDue(ctx context.Context, p store.NotificationClaimDueParams) ([]store.Notification, error) {
	var out []store.Notification
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_ms <= ?
			ORDER BY next_attempt_ms, id LIMIT ?`+s.lock()), ms(p.Now), p.Limit)
		if err != nil {
			return s.wrap(err)
		}
		var ids []int64
		for rows.Next() {
			var id int64
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return s.wrap(err)
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.wrap(err)
		}
		if len(ids) == 0 {
			return nil
		}
		args := append([]any{ms(p.LeaseUntil), ms(p.Now)}, int64Args(ids)...)
		rows, err = tx.QueryContext(ctx, s.q(`UPDATE notifications SET claim_token = claim_token + 1, next_attempt_ms = ?
			WHERE status = 'pending' AND next_attempt_ms <= ? AND id IN `+inList(len(ids))+` RETURNING `+notificationColumns), args...)
		if err != nil {
			return s.wrap(err)
		}
		defer rows.Close()
		for rows.Next() {
			n, err := scanNotification(rows)
			if err != nil {
				return s.wrap(err)
			}
			out = append(out, n)
		}
		return s.wrap(rows.Err())
	})
	return out, err
}

// NotificationFinish writes an attempt's outcome if the claim is still the caller's.
func (s *DB) NotificationFinish(ctx context.Context, p store.NotificationFinishParams) error {
	n, err := s.exec(ctx, s.db, `UPDATE notifications SET status = ?, attempts = ?, next_attempt_ms = ?, last_error = ?, sent_ms = ?
		WHERE id = ? AND claim_token = ? AND status = 'pending'`, p.Status, p.Attempts, ms(p.NextAttempt), p.LastError, ms(p.Sent), p.ID, p.ClaimToken)
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

// NotificationNextDue returns the earliest next attempt among pending messages.
func (s *DB) NotificationNextDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(next_attempt_ms) FROM notifications WHERE status = 'pending'`).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, false, s.wrap(err)
	}
	return fromMS(v.Int64), true, nil
}

// NotificationList pages the account's messages, newest first.
func (s *DB) NotificationList(ctx context.Context, p store.NotificationListParams) ([]store.Notification, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.JobID != 0 {
		where += ` AND job_id = ?`
		args = append(args, p.JobID)
	}
	if p.Status != "" {
		where += ` AND status = ?`
		args = append(args, p.Status)
	}
	return list(ctx, s, `notifications`, notificationColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanNotification)
}

// CertificateScan pages through every account's certificates whose expiry
// falls in [NotAfterFrom, NotAfterTo), by ID.
func (s *DB) CertificateScan(ctx context.Context, p store.CertificateScanParams) ([]store.Certificate, error) {
	if p.Limit <= 0 {
		p.Limit = 500
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+certColumns+` FROM certificates WHERE id > ? AND not_after_ms >= ? AND not_after_ms < ?
		ORDER BY id LIMIT ?`), p.AfterID, ms(p.NotAfterFrom), ms(p.NotAfterTo), p.Limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.Certificate
	for rows.Next() {
		c, err := scanCertificate(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, c)
	}
	return out, s.wrap(rows.Err())
}

// CertificateDeployedBy lists the account's jobs with a successful worker for the certificate.
func (s *DB) CertificateDeployedBy(ctx context.Context, accountID, certID int64) ([]store.Job, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+jobColumns+` FROM jobs WHERE account_id = ?
		AND id IN (SELECT job_id FROM workers WHERE account_id = ? AND cert_id = ? AND status = 'success') ORDER BY id`), accountID, accountID, certID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, j)
	}
	return out, s.wrap(rows.Err())
}
