package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const workerColumns = `id, account_id, job_id, resource_id, cert_id, cloud_name, cloud_product, status, attempts, next_run_ms,
	lease_owner, lease_token, lease_expires_ms, last_error, resource_cert_id, previous_enc, has_previous, unchanged, created_ms, modified_ms, wave`

func scanWorker(row interface{ Scan(...any) error }) (store.Worker, error) {
	var w store.Worker
	var next, lease, created, modified int64
	var hasPrev, unchanged int
	err := row.Scan(&w.ID, &w.AccountID, &w.JobID, &w.ResourceID, &w.CertID, &w.CloudName, &w.CloudProduct, &w.Status, &w.Attempts,
		&next, &w.LeaseOwner, &w.LeaseToken, &lease, &w.LastError, &w.ResourceCertID, &w.PreviousEnc, &hasPrev, &unchanged, &created, &modified, &w.Wave)
	w.Unchanged = unchanged != 0
	w.NextRunAt, w.LeaseExpires, w.Created, w.Modified = fromMS(next), fromMS(lease), fromMS(created), fromMS(modified)
	w.HasPrevious = hasPrev != 0
	return w, err
}

// WorkerList pages a job's workers in ID order.
func (s *DB) WorkerList(ctx context.Context, p store.WorkerListParams) ([]store.Worker, int64, error) {
	where := ` WHERE account_id = ? AND job_id = ?`
	args := []any{p.AccountID, p.JobID}
	if p.Status != "" {
		where += ` AND status = ?`
		args = append(args, p.Status)
	}
	if p.CloudProduct != "" {
		where += ` AND cloud_product = ?`
		args = append(args, p.CloudProduct)
	}
	return list(ctx, s, `workers`, workerColumns, where, ` ORDER BY id`, args, p.Limit, p.Offset, scanWorker)
}

// WorkerGet returns one worker of the account.
func (s *DB) WorkerGet(ctx context.Context, accountID, id int64) (store.Worker, error) {
	w, err := scanWorker(s.db.QueryRowContext(ctx, s.q(`SELECT `+workerColumns+` FROM workers WHERE account_id = ? AND id = ?`), accountID, id))
	return w, s.wrap(err)
}

// WorkerDelete deletes a worker of an editing job.
func (s *DB) WorkerDelete(ctx context.Context, accountID, jobID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		j, err := s.jobGet(ctx, tx, accountID, jobID)
		if err != nil {
			return err
		}
		var resourceID int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT resource_id FROM workers WHERE account_id = ? AND job_id = ? AND id = ?`), accountID, jobID, id).Scan(&resourceID); err != nil {
			return s.wrap(err)
		}
		if j.Status != store.JobEditing {
			return store.ErrConflict
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM workers WHERE id = ?`, id); err != nil {
			return err
		}
		_, err = s.exec(ctx, tx, `DELETE FROM job_refs WHERE job_id = ? AND kind = 'resource' AND ref_id = ?
			AND NOT EXISTS (SELECT 1 FROM workers WHERE job_id = ? AND resource_id = ?)`, jobID, resourceID, jobID, resourceID)
		return err
	})
}

// WorkerRequestRollback moves a finished worker (success or error) to rollback.
func (s *DB) WorkerRequestRollback(ctx context.Context, accountID, jobID, id int64, now time.Time) error {
	n, err := s.exec(ctx, s.db, `UPDATE workers SET status = 'rollback', attempts = 0, next_run_ms = ?, last_error = '', modified_ms = ?
		WHERE account_id = ? AND job_id = ? AND id = ? AND status IN ('success', 'error')`, ms(now), ms(now), accountID, jobID, id)
	if err != nil || n > 0 {
		return err
	}
	if _, err := s.WorkerGet(ctx, accountID, id); err != nil {
		return err
	}
	return store.ErrConflict
}

// WorkerClaimDue leases due workers: scheduling ones, and processing or
// rollback ones whose lease has lapsed and whose retry time has come. A
// worker is skipped while another worker holds its resource.
func (s *DB) WorkerClaimDue(ctx context.Context, p store.WorkerClaimDueParams) ([]store.Worker, error) {
	var out []store.Worker
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// A staged job's workers wait for their wave (rollbacks never wait).
		// The scan follows workers_runnable in claim order and stops at the
		// limit; PostgreSQL locks the rows it returns, skipping rows another
		// claim holds. Neither planner finds that order alone without
		// statistics (a fresh table; autovacuum not yet run, or off): SQLite
		// scanned every runnable worker through a status index (since
		// dropped) and sorted them, PostgreSQL fetched them all with a
		// bitmap scan and sorted them (42 ms a claim at 10,000 runnable
		// workers, against 0.2 ms in index order). SQLite is told the index;
		// PostgreSQL, which takes no hints, is told not to sort in this
		// transaction, which leaves it the index's order.
		if s.d.Name == "postgres" {
			if _, err := tx.ExecContext(ctx, `SET LOCAL enable_sort = off`); err != nil {
				return s.wrap(err)
			}
		}
		rows, err := tx.QueryContext(ctx, s.q(`SELECT c.id, c.resource_id FROM workers c`+s.indexedBy("workers_runnable")+`
			JOIN jobs j ON j.id = c.job_id
			WHERE c.status IN ('scheduling', 'processing', 'rollback') AND c.next_run_ms <= ? AND c.lease_expires_ms < ?
			AND ((c.wave <= j.current_wave AND j.cancelled_ms = 0) OR c.status = 'rollback')
			AND NOT EXISTS (SELECT 1 FROM workers o WHERE o.resource_id = c.resource_id AND o.active = 1 AND o.id <> c.id)
			ORDER BY c.next_run_ms, c.id LIMIT ?`+s.lockOf("c")), ms(p.Now), ms(p.Now), p.Limit)
		if err != nil {
			return s.wrap(err)
		}
		type pick struct{ id, resource int64 }
		var picks []pick
		taken := map[int64]bool{}
		for rows.Next() {
			var id, res int64
			if err := rows.Scan(&id, &res); err != nil {
				rows.Close()
				return s.wrap(err)
			}
			if !taken[res] {
				taken[res] = true
				picks = append(picks, pick{id, res})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return s.wrap(err)
		}
		if len(picks) == 0 {
			return nil
		}
		// Lease them all in one statement. A concurrent claim (another
		// node) that picked another worker of the same resource from an
		// older snapshot makes the workers_one_active index wait for it and
		// then fail, or two such claims wait on each other until PostgreSQL
		// ends one as a deadlock: both are ErrConflict (the dialect's
		// IsUnique), nothing is leased, and the engine claims again.
		ids := make([]int64, len(picks))
		for i, pk := range picks {
			ids[i] = pk.id
		}
		slices.Sort(ids) // locks in ID order, as values' statements take them
		// The picks are found by primary key alone: status is re-checked as
		// an expression no index serves. Written plainly, PostgreSQL without
		// statistics ANDed workers_pkey with a bitmap of the whole
		// workers_runnable index, reading every runnable worker's entry on
		// every claim (TestPlansWithoutStatistics).
		rows, err = tx.QueryContext(ctx, s.q(`UPDATE workers SET
				status = CASE WHEN status = 'scheduling' THEN 'processing' ELSE status END,
				lease_owner = ?, lease_token = lease_token + 1, lease_expires_ms = ?, active = 1, modified_ms = ?
				WHERE id IN `+inList(padLen(len(ids)))+` AND lease_expires_ms < ? AND (status || '') IN ('scheduling', 'processing', 'rollback')
				RETURNING `+workerColumns),
			append(append([]any{p.Owner, ms(p.LeaseUntil), ms(p.Now)}, padIDs(ids)...), ms(p.Now))...)
		if err != nil {
			return s.wrap(err)
		}
		defer rows.Close()
		for rows.Next() { // a worker claimed by someone else since we read it is not returned
			w, err := scanWorker(rows)
			if err != nil {
				return s.wrap(err)
			}
			out = append(out, w)
		}
		return s.wrap(rows.Err())
	})
	sort.Slice(out, func(i, j int) bool {
		if !out[i].NextRunAt.Equal(out[j].NextRunAt) {
			return out[i].NextRunAt.Before(out[j].NextRunAt)
		}
		return out[i].ID < out[j].ID
	})
	return out, err
}

// indexedBy makes SQLite's planner use index for the table before it (its
// planner has no statistics unless ANALYZE ran); other engines plan alone.
func (s *DB) indexedBy(index string) string {
	if s.d.Name == "sqlite" {
		return " INDEXED BY " + index
	}
	return ""
}

// WorkerExtendLease renews a held lease.
func (s *DB) WorkerExtendLease(ctx context.Context, id, token int64, until time.Time) error {
	renewed, err := s.WorkerExtendLeases(ctx, []store.Lease{{ID: id, Token: token}}, until)
	if err == nil && !renewed[id] {
		return store.ErrConflict
	}
	return err
}

// WorkerRecordPrevious records, once, what the resource held before this
// worker first deployed to it.
func (s *DB) WorkerRecordPrevious(ctx context.Context, p store.WorkerRecordPreviousParams) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var token int64
		var has int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT lease_token, has_previous FROM workers WHERE id = ?`), p.ID).Scan(&token, &has); err != nil {
			return s.wrap(err)
		}
		if token != p.LeaseToken {
			return store.ErrConflict
		}
		if has != 0 {
			return nil
		}
		_, err := s.exec(ctx, tx, `UPDATE workers SET resource_cert_id = ?, previous_enc = ?, has_previous = 1, unchanged = ? WHERE id = ? AND lease_token = ?`,
			p.ResourceCertID, p.PreviousEnc, b2i(p.Unchanged), p.ID, p.LeaseToken)
		return err
	})
}

// WorkerFinish writes an attempt's outcome if the caller still holds the lease.
func (s *DB) WorkerFinish(ctx context.Context, p store.WorkerFinishParams) error {
	errs, err := s.WorkerFinishMany(ctx, []store.WorkerFinishParams{p})
	if err != nil {
		return err
	}
	return errs[0]
}

// WorkerFinishMany writes many outcomes at once (group commit) with one or
// two statements in the common case, whatever their number. Each outcome
// is conditional on its own lease token as in WorkerFinish; one that lost
// its lease gets ErrConflict in errs and writes nothing, without failing
// the others. Any other error fails the whole batch (err), and nothing is
// written.
//
// An outcome's own row (status, previous state) and its resource's
// certificate are one statement on PostgreSQL (a data-modifying WITH), so
// a batch of successes and failures is one round trip and needs no
// explicit transaction; SQLite runs two statements in one. Retries (a
// cancelled job's worker ends instead) and rollback marks on the job add
// a statement each, in a transaction.
func (s *DB) WorkerFinishMany(ctx context.Context, ps []store.WorkerFinishParams) (errs []error, err error) {
	extra := false
	for _, p := range ps {
		extra = extra || p.Status == store.WorkerScheduling || p.Status == store.WorkerProcessing || p.MarkJobRollback
	}
	var written map[int64]bool
	write := func(x querier) error {
		var err error
		if written, err = s.finishOutcomes(ctx, x, ps); err != nil || !extra {
			return err
		}
		return s.finishExtras(ctx, x, ps, written)
	}
	if s.d.Name == "postgres" && !extra {
		err = write(s.db) // one statement: atomic by itself
	} else {
		err = s.tx(ctx, func(tx *sql.Tx) error { return write(tx) })
	}
	if err != nil {
		return nil, err
	}
	errs = make([]error, len(ps))
	for i, p := range ps {
		if !written[p.ID] {
			errs[i] = store.ErrConflict
		}
	}
	return errs, nil
}

// finishOutcomes writes the outcomes whose lease still holds, with the
// previous state (if none was recorded yet) and the resource's current
// certificate; it returns the IDs written.
func (s *DB) finishOutcomes(ctx context.Context, x querier, ps []store.WorkerFinishParams) (map[int64]bool, error) {
	rows := make([][]any, len(ps))
	for i, p := range ps {
		var prevCert, unchanged int64
		prevEnc := []byte{}
		if pr := p.Previous; pr != nil {
			prevCert, prevEnc, unchanged = pr.ResourceCertID, pr.PreviousEnc, int64(b2i(pr.Unchanged))
		}
		rows[i] = []any{p.ID, p.LeaseToken, string(p.Status), p.LastError, int64(p.Attempts), ms(p.NextRunAt), ms(p.Now),
			int64(b2i(p.Previous != nil)), prevCert, prevEnc, unchanged, int64(b2i(p.SetResourceCert)), p.ResourceID, p.ResourceCertID}
	}
	with, args := s.values("v(id, token, status, last_error, attempts, next_run_ms, now_ms, has_prev, prev_cert, prev_enc, unchanged, set_cert, resource_id, cert_id)",
		[]string{"BIGINT", "BIGINT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BIGINT", "BYTES", "BIGINT", "BIGINT", "BIGINT", "BIGINT"}, rows)
	const fresh = `v.has_prev = 1 AND workers.has_previous = 0` // a previous state to record
	update := `UPDATE workers SET status = v.status, last_error = v.last_error, attempts = v.attempts,
		next_run_ms = v.next_run_ms, lease_owner = '', lease_expires_ms = 0, active = 0, modified_ms = v.now_ms,
		resource_cert_id = CASE WHEN ` + fresh + ` THEN v.prev_cert ELSE workers.resource_cert_id END,
		previous_enc = CASE WHEN ` + fresh + ` THEN v.prev_enc ELSE workers.previous_enc END,
		unchanged = CASE WHEN ` + fresh + ` THEN v.unchanged ELSE workers.unchanged END,
		has_previous = CASE WHEN v.has_prev = 1 THEN 1 ELSE workers.has_previous END
		FROM v WHERE ` + byLease
	if s.d.Name == "postgres" {
		return s.ids(ctx, x, with+`, w AS (`+update+` RETURNING workers.id, v.set_cert, v.resource_id, v.cert_id, v.now_ms),
			r AS (UPDATE resources SET current_cert_id = w.cert_id, modified_ms = w.now_ms FROM w
				WHERE w.set_cert = 1 AND resources.id = w.resource_id)
			SELECT id FROM w`, args...)
	}
	written, err := s.ids(ctx, x, with+` `+update+` RETURNING workers.id`, args...)
	if err != nil {
		return nil, err
	}
	var certs [][]any
	for _, p := range ps {
		if p.SetResourceCert && written[p.ID] {
			certs = append(certs, []any{p.ResourceID, p.ResourceCertID, ms(p.Now)})
		}
	}
	if len(certs) > 0 {
		with, args := s.values("v(id, cert_id, now_ms)", []string{"BIGINT", "BIGINT", "BIGINT"}, certs)
		if _, err := s.exec(ctx, x, with+` UPDATE resources SET current_cert_id = v.cert_id, modified_ms = v.now_ms
			FROM v WHERE resources.id = v.id`, args...); err != nil {
			return nil, err
		}
	}
	return written, nil
}

// finishExtras makes the rarer writes of the outcomes written: a retry of
// a cancelled job's worker ends it instead (JobCancel left it alone because
// it was running), and a job gets its rollback mark.
func (s *DB) finishExtras(ctx context.Context, x querier, ps []store.WorkerFinishParams, written map[int64]bool) error {
	var retried, jobRollback []int64
	for _, p := range ps {
		switch {
		case !written[p.ID]:
			continue
		case p.Status == store.WorkerScheduling || p.Status == store.WorkerProcessing:
			retried = append(retried, p.ID)
		}
		if p.MarkJobRollback {
			jobRollback = append(jobRollback, p.ID)
		}
	}
	if len(retried) > 0 {
		if _, err := s.exec(ctx, x, `UPDATE workers SET status = 'error', last_error = `+cancelledError+`, next_run_ms = 0
			WHERE id IN `+inList(padLen(len(retried)))+` AND status IN ('scheduling', 'processing')
			AND job_id IN (SELECT id FROM jobs WHERE cancelled_ms > 0)`,
			append([]any{store.CancelledMessage, store.CancelledMessage}, padIDs(retried)...)...); err != nil {
			return err
		}
	}
	if len(jobRollback) > 0 {
		if _, err := s.exec(ctx, x, `UPDATE jobs SET rollback = 1, modified_ms = ?
			WHERE id IN (SELECT job_id FROM workers WHERE id IN `+inList(padLen(len(jobRollback)))+`)`,
			append([]any{ms(ps[0].Now)}, padIDs(jobRollback)...)...); err != nil {
			return err
		}
	}
	return nil
}

// WorkerExtendLeases renews many held leases in one statement and returns
// the IDs of those renewed: a lease missing from it was lost (its token is
// stale or the worker was finished), exactly as WorkerExtendLease's
// ErrConflict says of one.
func (s *DB) WorkerExtendLeases(ctx context.Context, leases []store.Lease, until time.Time) (map[int64]bool, error) {
	if len(leases) == 0 {
		return map[int64]bool{}, nil
	}
	rows := make([][]any, len(leases))
	for i, l := range leases {
		rows[i] = []any{l.ID, l.Token}
	}
	with, args := s.values("v(id, token)", []string{"BIGINT", "BIGINT"}, rows)
	release, err := s.write(ctx) // a write, though it runs as a query (RETURNING)
	if err != nil {
		return nil, err
	}
	defer release()
	return s.ids(ctx, s.db, with+` UPDATE workers SET lease_expires_ms = ? FROM v WHERE `+byLease+` RETURNING workers.id`,
		append(args, ms(until))...)
}

// byLease matches the rows of v (id, token) to the workers whose lease they
// still hold. The fence is the token and active; the unary + keeps the
// planners off workers_one_active, the partial index of active workers: its
// entries of finished workers stay until a vacuum (a bitmap scan does not
// mark them dead as an index scan does), and PostgreSQL without statistics
// scanned it all and hash-joined v on every outcome batch (2,564 entries for
// 64 workers; 4.3 ms against 1.0 ms through the primary key).
const byLease = `workers.id = v.id AND workers.lease_token = v.token AND +workers.active = 1`

// ids runs a statement returning one ID per row.
func (s *DB) ids(ctx context.Context, x querier, query string, args ...any) (map[int64]bool, error) {
	rows, err := x.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, s.wrap(err)
		}
		out[id] = true
	}
	return out, s.wrap(rows.Err())
}

// values returns "WITH <name> AS (VALUES …)" holding rows, each value cast
// to its column's type (BIGINT, TEXT or BYTES: PostgreSQL cannot infer a
// parameter's type inside VALUES), and its arguments. Each row's first
// value is the int64 ID of the row it writes; the rows are sorted by it
// (below) and padded to a power of two with copies of a row whose first
// column is 0, an ID no row has, so that a batch of any size uses one of a
// few statement texts (each prepared once per connection).
func (s *DB) values(name string, types []string, rows [][]any) (string, []any) {
	var b strings.Builder
	b.WriteString("WITH " + name + " AS (VALUES ")
	row := make([]string, len(types))
	for i, t := range types {
		if t == "BYTES" {
			t = "BLOB"
			if s.d.Name == "postgres" {
				t = "BYTEA"
			}
		}
		row[i] = "CAST(? AS " + t + ")"
	}
	tuple := "(" + strings.Join(row, ", ") + ")"
	// In ascending ID order: a statement joining workers to v by primary
	// key locks them in v's order, so two such statements (an outcome batch
	// and a lease renewal over the same running workers) take their locks in
	// one order and never wait on each other in a cycle, which PostgreSQL
	// ends by failing one of them a second later.
	slices.SortFunc(rows, func(a, b []any) int { return cmp.Compare(a[0].(int64), b[0].(int64)) })
	n := padLen(len(rows))
	args := make([]any, 0, n*len(types))
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(tuple)
		if i < len(rows) {
			args = append(args, rows[i]...)
			continue
		}
		args = append(args, int64(0)) // padding: matches no row
		for _, v := range rows[0][1:] {
			args = append(args, v)
		}
	}
	b.WriteString(")")
	return b.String(), args
}

// padLen is n rounded up to a power of two: the length of an ID list or a
// VALUES list of n, so that lists of any length share a few statement texts.
func padLen(n int) int {
	p := 1
	for p < n {
		p *= 2
	}
	return p
}

// padIDs pads ids to padLen with 0, an ID no row has.
func padIDs(ids []int64) []any {
	out := int64Args(ids)
	for len(out) < padLen(len(ids)) {
		out = append(out, int64(0))
	}
	return out
}

// WriteConcurrency is how many write transactions are worth running at
// once: 1 on SQLite (one writer at a time), 2 on PostgreSQL: an outcome
// batch is one statement there, so more flushes at once only split the
// waiting outcomes into smaller batches, each waiting for a WAL flush of
// its own (8 measured 1 transaction per worker and 171 workers/s).
func (s *DB) WriteConcurrency() int {
	if s.d.Name == "sqlite" {
		return 1
	}
	return 2
}

// WorkerNextDue returns the earliest time a claimable worker becomes due:
// its retry time, or its lease expiry if it is leased. Workers waiting for
// their wave are not claimable: the wave's advance wakes the engine.
func (s *DB) WorkerNextDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MIN(CASE WHEN w.lease_expires_ms > w.next_run_ms THEN w.lease_expires_ms ELSE w.next_run_ms END)
		FROM workers w JOIN jobs j ON j.id = w.job_id WHERE w.status IN ('scheduling', 'processing', 'rollback')
		AND ((w.wave <= j.current_wave AND j.cancelled_ms = 0) OR w.status = 'rollback')`).Scan(&v)
	if err != nil || !v.Valid {
		return time.Time{}, false, s.wrap(err)
	}
	return fromMS(v.Int64), true, nil
}

// WorkerReleaseOwner hands back owner's leases so another claim can take them at once.
func (s *DB) WorkerReleaseOwner(ctx context.Context, owner string) error {
	_, err := s.exec(ctx, s.db, `UPDATE workers SET lease_expires_ms = 0, lease_owner = '' WHERE lease_owner = ? AND active = 1`, owner)
	return err
}
