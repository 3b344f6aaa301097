package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"slices"

	"github.com/certfleet/certfleet/internal/store"
)

// WorkerListAfter pages a job's workers by keyset: ID above p.AfterID, in
// ID order, at most p.Limit. Each page is an index seek, however deep.
func (s *DB) WorkerListAfter(ctx context.Context, p store.WorkerListAfterParams) ([]store.Worker, error) {
	if p.Limit <= 0 {
		return nil, errors.New("store: WorkerListAfter needs a Limit")
	}
	where, args := workerFilter(p.AccountID, p.JobID, p.Status, p.CloudProduct)
	return queryAll(ctx, s, s.db, `SELECT `+workerColumns+` FROM workers`+where+` AND id > ? ORDER BY id`+limitOffset(p.Limit, 0),
		append(args, p.AfterID), scanWorker)
}

// WorkerPage answers what WorkerList answers for one page (p.Limit > 0).
// One statement counts the matching workers and finds their lowest and
// highest IDs; when the count fills that span, the IDs are consecutive and
// the page's first worker is lowest + Offset, so the page is a seek
// (WorkerListAfter). Otherwise (workers deleted, or a filter picking some)
// it skips Offset rows as WorkerList does.
func (s *DB) WorkerPage(ctx context.Context, p store.WorkerListParams) ([]store.Worker, int64, error) {
	if p.Limit <= 0 {
		return nil, 0, errors.New("store: WorkerPage needs a Limit")
	}
	where, args := workerFilter(p.AccountID, p.JobID, p.Status, p.CloudProduct)
	var total int64
	var lo, hi sql.NullInt64
	// Three subqueries, not one: each engine then answers MIN and MAX from
	// the ends of the index instead of along with the count.
	q := `SELECT (SELECT COUNT(*) FROM workers` + where + `), (SELECT MIN(id) FROM workers` + where + `), (SELECT MAX(id) FROM workers` + where + `)`
	if err := s.db.QueryRowContext(ctx, s.q(q), slices.Concat(args, args, args)...).Scan(&total, &lo, &hi); err != nil {
		return nil, 0, s.wrap(err)
	}
	if total == 0 || int64(p.Offset) >= total {
		return nil, total, nil
	}
	if hi.Int64-lo.Int64+1 == total {
		ws, err := s.WorkerListAfter(ctx, store.WorkerListAfterParams{AccountID: p.AccountID, JobID: p.JobID, Status: p.Status,
			CloudProduct: p.CloudProduct, AfterID: lo.Int64 + int64(p.Offset) - 1, Limit: p.Limit})
		return ws, total, err
	}
	ws, err := queryAll(ctx, s, s.db, `SELECT `+workerColumns+` FROM workers`+where+` ORDER BY id`+limitOffset(p.Limit, p.Offset), args, scanWorker)
	return ws, total, err
}

// workerFilter is the WHERE clause selecting a job's workers, optionally
// of one status and one product.
func workerFilter(accountID, jobID int64, status store.WorkerStatus, product string) (string, []any) {
	where := ` WHERE account_id = ? AND job_id = ?`
	args := []any{accountID, jobID}
	if status != "" {
		where += ` AND status = ?`
		args = append(args, status)
	}
	if product != "" {
		where += ` AND cloud_product = ?`
		args = append(args, product)
	}
	return where, args
}
