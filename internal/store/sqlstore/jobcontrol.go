package sqlstore

import (
	"context"
	"database/sql"

	"github.com/certfleet/certfleet/internal/store"
)

// cancelledError is the last_error a cancelled worker ends with: the
// message, and the error of its last attempt if it had one.
const cancelledError = `CASE WHEN last_error = '' THEN CAST(? AS TEXT) ELSE CAST(? AS TEXT) || ' (last attempt: ' || last_error || ')' END`

// finishIfDoneSQL ends a started job once none of its workers is left to
// run: error if any failed, else success. Its arguments: job ID, end,
// modified, job ID, job ID.
const finishIfDoneSQL = `UPDATE jobs SET
	status = CASE WHEN EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND status = 'error') THEN 'error' ELSE 'success' END,
	end_ms = ?, modified_ms = ?
	WHERE id = ? AND status IN ('pending', 'scheduling', 'processing')
	AND NOT EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND status IN ('editing', 'pending', 'scheduling', 'processing'))`

// JobCancel stops a job: workers not running end error, the job is marked.
// A worker whose lease lapsed (its holder died) counts as not running; its
// lease is taken back (active = 0), so a late holder cannot write an outcome.
func (s *DB) JobCancel(ctx context.Context, p store.JobCancelParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE jobs SET cancelled_ms = ?, bake_until_ms = 0, modified_ms = ?
			WHERE account_id = ? AND id = ? AND status IN ('pending', 'scheduling', 'processing') AND cancelled_ms = 0`,
			ms(p.Now), ms(p.Now), p.AccountID, p.JobID)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.jobGet(ctx, tx, p.AccountID, p.JobID); err != nil {
				return err
			}
			return store.ErrConflict
		}
		if _, err := s.exec(ctx, tx, `UPDATE workers SET status = 'error', last_error = `+cancelledError+`, next_run_ms = 0,
			lease_owner = '', lease_expires_ms = 0, active = 0, modified_ms = ?
			WHERE job_id = ? AND status IN ('editing', 'pending', 'scheduling', 'processing') AND (active = 0 OR lease_expires_ms < ?)`,
			store.CancelledMessage, store.CancelledMessage, ms(p.Now), p.JobID, ms(p.Now)); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, finishIfDoneSQL, p.JobID, ms(p.Now), ms(p.Now), p.JobID, p.JobID)
		return err
	})
}

// JobRetry runs a job's failed workers again.
func (s *DB) JobRetry(ctx context.Context, p store.JobRetryParams) (int64, error) {
	var moved int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// A finished job runs its retried workers at once: its halt (if
		// any) is lifted and every wave is open.
		n, err := s.exec(ctx, tx, `UPDATE jobs SET
			current_wave = CASE WHEN status = 'processing' THEN current_wave ELSE last_wave END,
			halted_wave = CASE WHEN status = 'processing' THEN halted_wave ELSE 0 END,
			start_ms = CASE WHEN start_ms = 0 THEN ? ELSE start_ms END,
			status = 'processing', end_ms = 0, cancelled_ms = 0, notified = 0, bake_until_ms = 0, modified_ms = ?
			WHERE account_id = ? AND id = ? AND status IN ('success', 'error', 'processing')`,
			ms(p.Now), ms(p.Now), p.AccountID, p.JobID)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.jobGet(ctx, tx, p.AccountID, p.JobID); err != nil {
				return err
			}
			return store.ErrConflict
		}
		q := `UPDATE workers SET status = 'scheduling', attempts = 0, next_run_ms = ?, last_error = '', lease_owner = '',
			lease_expires_ms = 0, modified_ms = ? WHERE job_id = ? AND status = 'error' AND active = 0`
		args := []any{ms(p.Now), ms(p.Now), p.JobID}
		if len(p.WorkerIDs) > 0 {
			q += ` AND id IN ` + inList(len(p.WorkerIDs))
			for _, id := range p.WorkerIDs {
				args = append(args, id)
			}
		}
		if moved, err = s.exec(ctx, tx, q, args...); err != nil {
			return err
		}
		if moved == 0 {
			return store.ErrConflict // rolls the job's change back
		}
		return nil
	})
	return moved, err
}

// JobRollback asks for the rollback of every worker that changed its resource.
func (s *DB) JobRollback(ctx context.Context, p store.JobRollbackParams) (int64, error) {
	var moved int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		j, err := s.jobGet(ctx, tx, p.AccountID, p.JobID)
		if err != nil {
			return err
		}
		if moved, err = s.exec(ctx, tx, `UPDATE workers SET status = 'rollback', attempts = 0, next_run_ms = ?, last_error = '', modified_ms = ?
			WHERE job_id = ? AND status = 'success' AND unchanged = 0`, ms(p.Now), ms(p.Now), j.ID); err != nil {
			return err
		}
		if moved == 0 {
			return store.ErrConflict
		}
		return nil
	})
	return moved, err
}
