package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// JobWaveGet returns a job's wave state with the counts of its workers in
// waves up to the current one.
func (s *DB) JobWaveGet(ctx context.Context, jobID int64) (store.JobWave, error) {
	w := store.JobWave{JobID: jobID}
	var bake int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT status, strategy, current_wave, last_wave, halted_wave, bake_until_ms FROM jobs WHERE id = ?`), jobID).
		Scan(&w.Status, &w.Strategy, &w.CurrentWave, &w.LastWave, &w.HaltedWave, &bake)
	if err != nil {
		return w, s.wrap(err)
	}
	w.BakeUntil = fromMS(bake)
	if w.Strategy == "" {
		// A plain job has no waves: its workers are not counted (that
		// count read every worker of the job on each engine tick).
		return w, nil
	}
	var last sql.NullInt64
	err = s.db.QueryRowContext(ctx, s.q(`SELECT
		COALESCE(SUM(CASE WHEN status IN ('editing', 'pending', 'scheduling', 'processing') THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN status IN ('editing', 'pending', 'scheduling', 'processing') THEN 0 ELSE 1 END), 0),
		COALESCE(SUM(CASE WHEN status = 'error' THEN 1 ELSE 0 END), 0),
		MAX(CASE WHEN status IN ('editing', 'pending', 'scheduling', 'processing') THEN NULL ELSE modified_ms END)
		FROM workers WHERE job_id = ? AND wave <= ?`), jobID, w.CurrentWave).Scan(&w.Running, &w.Finished, &w.Failed, &last)
	if err != nil {
		return w, s.wrap(err)
	}
	if last.Valid {
		w.LastFinished = fromMS(last.Int64)
	}
	return w, nil
}

// JobWaveBake records the end of the current wave's bake.
func (s *DB) JobWaveBake(ctx context.Context, jobID int64, from int, until time.Time) error {
	n, err := s.exec(ctx, s.db, `UPDATE jobs SET bake_until_ms = ? WHERE id = ? AND status = 'processing' AND current_wave = ? AND halted_wave = 0 AND cancelled_ms = 0`,
		ms(until), jobID, from)
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

// JobWaveAdvance lets the next wave's workers run.
func (s *DB) JobWaveAdvance(ctx context.Context, p store.JobWaveAdvanceParams) error {
	n, err := s.exec(ctx, s.db, `UPDATE jobs SET current_wave = ?, bake_until_ms = 0, modified_ms = ?
		WHERE id = ? AND status = 'processing' AND current_wave = ? AND current_wave < last_wave AND halted_wave = 0 AND cancelled_ms = 0`,
		p.From+1, ms(p.Now), p.JobID, p.From)
	if err == nil && n == 0 {
		return store.ErrConflict
	}
	return err
}

// JobWaveHalt stops a staged job in its current wave.
func (s *DB) JobWaveHalt(ctx context.Context, p store.JobWaveHaltParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE jobs SET halted_wave = ?, bake_until_ms = 0, modified_ms = ?
			WHERE id = ? AND status = 'processing' AND current_wave = ? AND halted_wave = 0 AND cancelled_ms = 0`, p.Wave+1, ms(p.Now), p.JobID, p.Wave)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrConflict
		}
		if _, err := s.exec(ctx, tx, `UPDATE workers SET status = 'error', last_error = ?, modified_ms = ?
			WHERE job_id = ? AND wave > ? AND status IN ('editing', 'pending', 'scheduling', 'processing') AND active = 0 AND attempts = 0`,
			p.Message, ms(p.Now), p.JobID, p.Wave); err != nil {
			return err
		}
		if p.Rollback {
			_, err = s.exec(ctx, tx, `UPDATE workers SET status = 'rollback', attempts = 0, next_run_ms = ?, last_error = '', modified_ms = ?
				WHERE job_id = ? AND status = 'success'`, ms(p.Now), ms(p.Now), p.JobID)
		}
		return err
	})
}

// JobBakeDue lists processing jobs whose bake is over and the next bake end.
func (s *DB) JobBakeDue(ctx context.Context, now time.Time) ([]int64, time.Time, bool, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, bake_until_ms FROM jobs WHERE status = 'processing' AND bake_until_ms > 0 ORDER BY id`)
	if err != nil {
		return nil, time.Time{}, false, s.wrap(err)
	}
	defer rows.Close()
	var due []int64
	var next int64
	for rows.Next() {
		var id, until int64
		if err := rows.Scan(&id, &until); err != nil {
			return nil, time.Time{}, false, s.wrap(err)
		}
		if until <= ms(now) {
			due = append(due, id)
		} else if next == 0 || until < next {
			next = until
		}
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, false, s.wrap(err)
	}
	return due, fromMS(next), next != 0, nil
}

// jobHaltEventsDue returns halted staged jobs whose halt was not told yet.
func (s *DB) jobHaltEventsDue(ctx context.Context, limit int) ([]store.JobEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+jobColumns+`, modified_ms FROM jobs WHERE halted_wave > 0 AND halt_notified = 0
		ORDER BY id LIMIT ?`), limit)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.JobEvent
	for rows.Next() {
		var mark int64
		j, err := scanJob(scanPlus{rows, &mark})
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, store.JobEvent{Job: j, Kind: store.JobEventKindHalt, Mark: fromMS(mark)})
	}
	return out, s.wrap(rows.Err())
}
