package sqlstore

import (
	"context"
	"database/sql"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const jobColumns = `id, account_id, name, job_type, status, schedule_ms, start_ms, end_ms, rollback, cert_ids, resource_ids,
	contact_ids, config, created_ms, modified_ms, strategy, current_wave, last_wave, halted_wave, products, cancelled_ms`

func scanJob(row interface{ Scan(...any) error }) (store.Job, error) {
	var j store.Job
	var sched, start, end, created, modified, cancelled int64
	var rollback int
	var certs, resources, contacts, products string
	err := row.Scan(&j.ID, &j.AccountID, &j.Name, &j.JobType, &j.Status, &sched, &start, &end, &rollback, &certs, &resources,
		&contacts, &j.Config, &created, &modified, &j.Strategy, &j.CurrentWave, &j.LastWave, &j.HaltedWave, &products, &cancelled)
	if products != "" {
		j.Products = strings.Split(products, ",")
	}
	j.ScheduleTime, j.StartTime, j.EndTime = fromMS(sched), fromMS(start), fromMS(end)
	j.Created, j.Modified = fromMS(created), fromMS(modified)
	j.Rollback = rollback != 0
	j.Cancelled = fromMS(cancelled)
	j.CertIDs = idsFromJSON(certs)
	j.ResourceIDs = idsFromJSON(resources)
	j.ContactIDs = idsFromJSON(contacts)
	return j, err
}

// idsFromJSON reads a JSON array of IDs as jsonText wrote it. A job's
// resource list has one ID per resource and is read with the job on every
// DescribeDeploymentJob; encoding/json took ~10 ms for 10,000 of them.
// Anything but digits, commas, brackets and spaces falls back to it.
func idsFromJSON(s string) []int64 {
	if s == "" {
		return nil
	}
	out := make([]int64, 0, strings.Count(s, ",")+1)
	var n int64
	digits := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			n, digits = n*10+int64(c-'0'), true
		case c == ',' || c == ']':
			if digits {
				out = append(out, n)
			}
			n, digits = 0, false
		case c == '[' || c == ' ':
		default:
			return fromJSON[[]int64](s)
		}
	}
	if len(out) == 0 && s != "[]" {
		return fromJSON[[]int64](s) // "null" and the like
	}
	return out
}

// JobCreate inserts j (status editing) with its workers and references.
func (s *DB) JobCreate(ctx context.Context, j *store.Job, workers store.WorkerChunks) error {
	now := time.Now()
	j.Created, j.Modified = now, now
	if j.Status == "" {
		j.Status = store.JobEditing
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO jobs (account_id, name, job_type, status, schedule_ms, start_ms, end_ms, rollback,
			cert_ids, resource_ids, contact_ids, config, created_ms, modified_ms, strategy, last_wave) VALUES (?, ?, ?, ?, ?, 0, 0, 0, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			j.AccountID, j.Name, j.JobType, j.Status, ms(j.ScheduleTime), jsonText(j.CertIDs), jsonText(j.ResourceIDs), jsonText(j.ContactIDs),
			j.Config, ms(now), ms(now), j.Strategy, j.LastWave).Scan(&j.ID)
		if err != nil {
			return s.wrap(err)
		}
		return s.writeJobChildren(ctx, tx, j, workers, now)
	})
}

// JobReplace rewrites an editing job's fields, workers and references.
func (s *DB) JobReplace(ctx context.Context, j *store.Job, workers store.WorkerChunks) error {
	now := time.Now()
	j.Modified = now
	// Only an editing job is replaced, so its new workers are editing too,
	// whatever Status the caller's struct carries.
	j.Status = store.JobEditing
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE jobs SET name = ?, schedule_ms = ?, cert_ids = ?, resource_ids = ?, contact_ids = ?, config = ?, modified_ms = ?,
			strategy = ?, last_wave = ?, current_wave = 0, bake_until_ms = 0
			WHERE account_id = ? AND id = ? AND status = 'editing'`, j.Name, ms(j.ScheduleTime), jsonText(j.CertIDs), jsonText(j.ResourceIDs),
			jsonText(j.ContactIDs), j.Config, ms(now), j.Strategy, j.LastWave, j.AccountID, j.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.jobGet(ctx, tx, j.AccountID, j.ID); err != nil {
				return err
			}
			return store.ErrConflict
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM workers WHERE job_id = ?`, j.ID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM job_refs WHERE job_id = ?`, j.ID); err != nil {
			return err
		}
		return s.writeJobChildren(ctx, tx, j, workers, now)
	})
}

// insertRows bounds the rows of one multi-row INSERT a job's children are
// written with: 500 workers are 5,000 parameters, within both engines'
// limits (SQLite 32,766, PostgreSQL 65,535).
const insertRows = 500

// writeJobChildren writes j's references and its workers, taken from
// workers one chunk at a time, and sets j.Products. Memory is bounded by
// the chunk workers gives, not by the job.
func (s *DB) writeJobChildren(ctx context.Context, tx *sql.Tx, j *store.Job, workers store.WorkerChunks, now time.Time) error {
	refs := []struct {
		kind string
		ids  []int64
	}{{"cert", j.CertIDs}, {"resource", j.ResourceIDs}, {"contact", j.ContactIDs}}
	for _, r := range refs {
		for ids := range slices.Chunk(r.ids, insertRows) {
			args := make([]any, 0, 3*len(ids))
			for _, id := range ids {
				args = append(args, j.ID, r.kind, id)
			}
			// A definition may name an object twice (the API's lists never do).
			if _, err := s.exec(ctx, tx, `INSERT INTO job_refs (job_id, kind, ref_id) VALUES `+valueRows(len(ids), 3)+
				` ON CONFLICT DO NOTHING`, args...); err != nil {
				return err
			}
		}
	}
	products := map[string]bool{}
	if workers != nil {
		err := workers(func(chunk []store.Worker) error {
			for ws := range slices.Chunk(chunk, insertRows) {
				args := make([]any, 0, 10*len(ws))
				for _, w := range ws {
					products[w.CloudProduct] = true
					args = append(args, j.AccountID, j.ID, w.ResourceID, w.CertID, w.CloudName, w.CloudProduct, j.Status, ms(now), ms(now), w.Wave)
				}
				if _, err := s.exec(ctx, tx, `INSERT INTO workers (account_id, job_id, resource_id, cert_id, cloud_name, cloud_product, status,
					created_ms, modified_ms, wave) VALUES `+valueRows(len(ws), 10), args...); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	j.Products = slices.Sorted(maps.Keys(products))
	_, err := s.exec(ctx, tx, `UPDATE jobs SET products = ? WHERE id = ?`, strings.Join(j.Products, ","), j.ID)
	return err
}

// valueRows is the VALUES list of a multi-row INSERT: rows groups of cols
// placeholders.
func valueRows(rows, cols int) string {
	row := "(" + strings.Repeat("?, ", cols-1) + "?)"
	var b strings.Builder
	b.Grow(rows * (len(row) + 2))
	for i := range rows {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	return b.String()
}

func (s *DB) jobGet(ctx context.Context, x querier, accountID, id int64) (store.Job, error) {
	j, err := scanJob(x.QueryRowContext(ctx, s.q(`SELECT `+jobColumns+` FROM jobs WHERE account_id = ? AND id = ?`), accountID, id))
	return j, s.wrap(err)
}

// JobGet returns one job of the account.
func (s *DB) JobGet(ctx context.Context, accountID, id int64) (store.Job, error) {
	return s.jobGet(ctx, s.db, accountID, id)
}

// JobList pages the account's jobs, newest first.
func (s *DB) JobList(ctx context.Context, p store.JobListParams) ([]store.Job, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.Status != "" {
		where += ` AND status = ?`
		args = append(args, p.Status)
	}
	if p.JobType != "" {
		where += ` AND job_type = ?`
		args = append(args, p.JobType)
	}
	return list(ctx, s, `jobs`, jobColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanJob)
}

// JobDelete deletes a job that is not processing, with its workers.
func (s *DB) JobDelete(ctx context.Context, accountID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM jobs WHERE account_id = ? AND id = ? AND status <> 'processing'
			AND NOT EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND status = 'rollback')`, accountID, id, id)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.jobGet(ctx, tx, accountID, id); err != nil {
				return err
			}
			return store.ErrConflict
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM workers WHERE job_id = ?`, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM job_refs WHERE job_id = ?`, id)
		return err
	})
}

// JobSetStatus moves a job between editing, pending and scheduling, and its
// not-yet-started workers with it.
func (s *DB) JobSetStatus(ctx context.Context, p store.JobSetStatusParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		args := []any{p.To, ms(p.Now)}
		set := `status = ?, modified_ms = ?`
		if !p.ScheduleTime.IsZero() || p.To == store.JobScheduling {
			set += `, schedule_ms = ?`
			args = append(args, ms(p.ScheduleTime))
		}
		args = append(args, p.AccountID, p.JobID)
		args = append(args, stringArgs(p.From)...)
		n, err := s.exec(ctx, tx, `UPDATE jobs SET `+set+` WHERE account_id = ? AND id = ? AND status IN `+inList(len(p.From)), args...)
		if err != nil {
			return err
		}
		if n == 0 {
			if _, err := s.jobGet(ctx, tx, p.AccountID, p.JobID); err != nil {
				return err
			}
			return store.ErrConflict
		}
		var from []store.WorkerStatus
		to := store.WorkerPending
		switch p.To {
		case store.JobPending, store.JobScheduling:
			from = []store.WorkerStatus{store.WorkerEditing}
		case store.JobEditing:
			from = []store.WorkerStatus{store.WorkerPending, store.WorkerScheduling}
			to = store.WorkerEditing
		}
		_, err = s.exec(ctx, tx, `UPDATE workers SET status = ?, modified_ms = ? WHERE job_id = ? AND status IN `+inList(len(from)),
			append([]any{to, ms(p.Now), p.JobID}, stringArgs(from)...)...)
		return err
	})
}

// JobNextDue returns the earliest schedule time among pending and scheduling jobs.
func (s *DB) JobNextDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(schedule_ms) FROM jobs WHERE status IN ('pending', 'scheduling')`).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, false, s.wrap(err)
	}
	return fromMS(v.Int64), true, nil
}

// JobStartDue starts every pending or scheduling job due at now: the job
// becomes processing and its workers scheduling (claimable).
func (s *DB) JobStartDue(ctx context.Context, now time.Time) ([]int64, error) {
	var ids []int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, s.q(`SELECT id FROM jobs WHERE status IN ('pending', 'scheduling') AND schedule_ms <= ? ORDER BY schedule_ms, id`+s.lock()), ms(now))
		if err != nil {
			return s.wrap(err)
		}
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
		for _, id := range ids {
			if _, err := s.exec(ctx, tx, `UPDATE jobs SET status = 'processing', start_ms = ?, modified_ms = ? WHERE id = ?`, ms(now), ms(now), id); err != nil {
				return err
			}
			if _, err := s.exec(ctx, tx, `UPDATE workers SET status = 'scheduling', next_run_ms = ?, modified_ms = ? WHERE job_id = ? AND status = 'pending'`,
				ms(now), ms(now), id); err != nil {
				return err
			}
		}
		return nil
	})
	return ids, err
}

func (s *DB) lock() string {
	if s.d.SkipLocked == "" {
		return ""
	}
	return " " + s.d.SkipLocked
}

// lockOf is lock for a join, locking only the rows of table alias.
func (s *DB) lockOf(alias string) string {
	if s.d.SkipLocked == "" {
		return ""
	}
	return " " + strings.Replace(s.d.SkipLocked, "FOR UPDATE", "FOR UPDATE OF "+alias, 1)
}

// JobFinishIfDone ends a processing job once no worker of it is left to run:
// error if any worker failed, success otherwise. It returns the job's status.
func (s *DB) JobFinishIfDone(ctx context.Context, jobID int64, now time.Time) (store.JobStatus, error) {
	_, err := s.exec(ctx, s.db, `UPDATE jobs SET
		status = CASE WHEN EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND status = 'error') THEN 'error' ELSE 'success' END,
		end_ms = ?, modified_ms = ?
		WHERE id = ? AND status = 'processing'
		AND NOT EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND status IN ('editing', 'pending', 'scheduling', 'processing'))`,
		jobID, ms(now), ms(now), jobID, jobID)
	if err != nil {
		return "", err
	}
	var status store.JobStatus
	err = s.db.QueryRowContext(ctx, s.q(`SELECT status FROM jobs WHERE id = ?`), jobID).Scan(&status)
	return status, s.wrap(err)
}

// JobStatusCounts counts a job's workers by outcome and product.
func (s *DB) JobStatusCounts(ctx context.Context, accountID, jobID int64) (store.JobCounts, error) {
	var c store.JobCounts
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT status, cloud_name, cloud_product, COUNT(*) FROM workers WHERE account_id = ? AND job_id = ?
		GROUP BY status, cloud_name, cloud_product ORDER BY cloud_name, cloud_product`), accountID, jobID)
	if err != nil {
		return c, s.wrap(err)
	}
	defer rows.Close()
	byProduct := map[[2]string]int64{}
	var order [][2]string
	for rows.Next() {
		var status store.WorkerStatus
		var name, product string
		var n int64
		if err := rows.Scan(&status, &name, &product, &n); err != nil {
			return c, s.wrap(err)
		}
		c.Workers += n
		switch status {
		case store.WorkerSuccess:
			c.Success += n
		case store.WorkerError:
			c.Failed += n
		case store.WorkerRollback:
			c.Rollback += n
		case store.WorkerRollbackSuccess:
			c.Rollback += n
			c.RollbackSuccess += n
		case store.WorkerRollbackError:
			c.Rollback += n
			c.RollbackFailed += n
		}
		k := [2]string{name, product}
		if _, ok := byProduct[k]; !ok {
			order = append(order, k)
		}
		byProduct[k] += n
	}
	for _, k := range order {
		c.ByProduct = append(c.ByProduct, store.ProductCount{CloudName: k[0], CloudProduct: k[1], Count: byProduct[k]})
	}
	return c, s.wrap(rows.Err())
}

// JobUnfinishedIDs lists processing jobs (for the engine to re-check on start).
func (s *DB) JobUnfinishedIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id FROM jobs WHERE status = 'processing' ORDER BY id`)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(err)
		}
		ids = append(ids, id)
	}
	return ids, s.wrap(rows.Err())
}

func stringArgs[S ~string](v []S) []any {
	out := make([]any, len(v))
	for i, s := range v {
		out[i] = s
	}
	return out
}
