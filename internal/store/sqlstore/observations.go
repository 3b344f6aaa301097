package sqlstore

import (
	"context"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// ResourceScan pages through every account's resources by ID.
func (s *DB) ResourceScan(ctx context.Context, p store.ResourceScanParams) ([]store.Resource, error) {
	where := ` WHERE id > ?`
	args := []any{p.AfterID}
	if p.ConfigContains != "" {
		// A Config key is matched as written: SQLite's LIKE ignores ASCII
		// case, so the substring is found by position on both engines.
		if s.d.Name == "postgres" {
			where += ` AND strpos(config, ?) > 0`
		} else {
			where += ` AND instr(config, ?) > 0`
		}
		args = append(args, p.ConfigContains)
	}
	limit := p.Limit
	if limit <= 0 {
		limit = 500
	}
	rs, _, err := list(ctx, s, `resources`, resourceColumns, where, ` ORDER BY id`+limitOffset(limit, 0), args, 0, 0, scanResource)
	return rs, err
}

// ResourceObservationPut records a resource's latest observation; ErrNotFound
// if the resource is not the account's.
func (s *DB) ResourceObservationPut(ctx context.Context, o store.ResourceObservation) error {
	if o.ObservedAt.IsZero() {
		o.ObservedAt = time.Now()
	}
	n, err := s.exec(ctx, s.db, `INSERT INTO resource_observations (resource_id, account_id, sha2, subject, not_after_ms, observed_ms, error)
		SELECT id, account_id, ?, ?, ?, ?, ? FROM resources WHERE account_id = ? AND id = ?
		ON CONFLICT (resource_id) DO UPDATE SET sha2 = excluded.sha2, subject = excluded.subject, not_after_ms = excluded.not_after_ms,
		observed_ms = excluded.observed_ms, error = excluded.error`,
		o.Sha2, o.Subject, ms(o.NotAfter), ms(o.ObservedAt), o.Error, o.AccountID, o.ResourceID)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

const observationColumns = `resource_id, account_id, sha2, subject, not_after_ms, observed_ms, error`

func scanObservation(row interface{ Scan(...any) error }) (store.ResourceObservation, error) {
	var o store.ResourceObservation
	var notAfter, observed int64
	err := row.Scan(&o.ResourceID, &o.AccountID, &o.Sha2, &o.Subject, &notAfter, &observed, &o.Error)
	o.NotAfter, o.ObservedAt = fromMS(notAfter), fromMS(observed)
	return o, err
}

// ResourceObservationGetMany returns the latest observations of the account's resources among ids.
func (s *DB) ResourceObservationGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.ResourceObservation, error) {
	out := make([]store.ResourceObservation, 0, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		os, _, err := list(ctx, s, `resource_observations`, observationColumns, ` WHERE account_id = ? AND resource_id IN `+inList(len(chunk)),
			` ORDER BY resource_id`, append([]any{accountID}, int64Args(chunk)...), 0, 0, scanObservation)
		if err != nil {
			return nil, err
		}
		out = append(out, os...)
	}
	return out, nil
}

// ResourceObservationCountByProduct counts, per product, the account's stale
// and expiring resources by their latest successful observation. A resource
// is stale when certfleet deployed a certificate to it and the observed
// leaf is another one.
func (s *DB) ResourceObservationCountByProduct(ctx context.Context, p store.ObservationCountParams) ([]store.ObservationCount, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT r.cloud_name, r.cloud_product,
		SUM(CASE WHEN r.current_cert_id <> 0 AND o.sha2 <> COALESCE(c.sha2, '') THEN 1 ELSE 0 END),
		SUM(CASE WHEN o.not_after_ms < ? THEN 1 ELSE 0 END)
		FROM resources r JOIN resource_observations o ON o.resource_id = r.id
		LEFT JOIN certificates c ON c.id = r.current_cert_id
		WHERE r.account_id = ? AND o.error = ''
		GROUP BY r.cloud_name, r.cloud_product ORDER BY r.cloud_name, r.cloud_product`), ms(p.ExpiringBefore), p.AccountID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.ObservationCount
	for rows.Next() {
		var oc store.ObservationCount
		if err := rows.Scan(&oc.CloudName, &oc.CloudProduct, &oc.Stale, &oc.Expiring); err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, oc)
	}
	return out, s.wrap(rows.Err())
}
