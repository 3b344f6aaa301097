package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// ResourceSync reconciles what one sync of one product of one credential
// found with the resources earlier syncs of that pair created.
func (s *DB) ResourceSync(ctx context.Context, p store.ResourceSyncParams) (store.SyncCounts, error) {
	counts := store.SyncCounts{Found: len(p.Found)}
	seen := make(map[string]bool, len(p.Found))
	for _, f := range p.Found {
		if f.DiscoveryKey == "" {
			return counts, fmt.Errorf("sync %s/%s: a found resource has no key", p.CloudName, p.CloudProduct)
		}
		if seen[f.DiscoveryKey] {
			return counts, fmt.Errorf("sync %s/%s: key %q found twice", p.CloudName, p.CloudProduct, f.DiscoveryKey)
		}
		seen[f.DiscoveryKey] = true
	}
	err := s.tx(ctx, func(tx *sql.Tx) error {
		existing, err := queryAll(ctx, s, tx, `SELECT `+resourceColumns+` FROM resources WHERE account_id = ? AND cloud_access_id = ?
			AND cloud_product = ? AND cloud_name = ? AND discovery_key <> '' ORDER BY id`, []any{p.AccountID, p.AccessID, p.CloudProduct, p.CloudName},
			scanResource)
		if err != nil {
			return err
		}
		byKey := make(map[string]store.Resource, len(existing))
		for _, r := range existing {
			byKey[r.DiscoveryKey] = r
		}
		now := ms(time.Now())
		for _, f := range p.Found {
			old, ok := byKey[f.DiscoveryKey]
			if !ok {
				name := f.Name
				if name == "" {
					name = f.DiscoveryKey
				}
				cfg := f.Config
				if cfg == "" {
					cfg = "{}"
				}
				if _, err := s.exec(ctx, tx, `INSERT INTO resources (account_id, cloud_name, cloud_product, domain, cloud_access_id, name,
					region_id, instance_id, listener_port, listener_id, config, current_cert_id, created_ms, modified_ms, discovery_key, status,
					default_resource, enable_https, bound_sha2, bound_not_after_ms)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, 'online', ?, ?, ?, ?)`,
					p.AccountID, p.CloudName, p.CloudProduct, f.Domain, p.AccessID, name, f.RegionID, f.InstanceID, f.ListenerPort,
					f.ListenerID, cfg, now, now, f.DiscoveryKey, boolInt(f.DefaultResource), boolInt(f.EnableHTTPS), f.BoundSha2,
					msOrZero(f.BoundNotAfter)); err != nil {
					return err
				}
				counts.Created++
				continue
			}
			cfg, err := mergeConfig(old.Config, f.Config)
			if err != nil {
				return fmt.Errorf("resource %d: %w", old.ID, err)
			}
			if cfg == old.Config && f.Domain == old.Domain && f.RegionID == old.RegionID && f.InstanceID == old.InstanceID &&
				f.ListenerPort == old.ListenerPort && f.ListenerID == old.ListenerID && old.Status == store.ResourceOnline &&
				f.DefaultResource == old.DefaultResource && f.EnableHTTPS == old.EnableHTTPS && f.BoundSha2 == old.BoundSha2 &&
				msOrZero(f.BoundNotAfter) == msOrZero(old.BoundNotAfter) {
				continue
			}
			if _, err := s.exec(ctx, tx, `UPDATE resources SET domain = ?, region_id = ?, instance_id = ?, listener_port = ?, listener_id = ?,
				config = ?, status = 'online', default_resource = ?, enable_https = ?, bound_sha2 = ?, bound_not_after_ms = ?, modified_ms = ?
				WHERE id = ?`, f.Domain, f.RegionID, f.InstanceID, f.ListenerPort, f.ListenerID, cfg, boolInt(f.DefaultResource),
				boolInt(f.EnableHTTPS), f.BoundSha2, msOrZero(f.BoundNotAfter), now, old.ID); err != nil {
				return err
			}
			counts.Updated++
		}
		for _, old := range existing {
			if seen[old.DiscoveryKey] || old.Status == store.ResourceGone {
				continue
			}
			if _, err := s.exec(ctx, tx, `UPDATE resources SET status = 'gone', modified_ms = ? WHERE id = ?`, now, old.ID); err != nil {
				return err
			}
			counts.Gone++
		}
		return nil
	})
	if err != nil {
		return store.SyncCounts{Found: len(p.Found)}, err
	}
	return counts, nil
}

// queryAll runs query on x and scans every row.
func queryAll[T any](ctx context.Context, s *DB, x querier, query string, args []any, scan func(interface{ Scan(...any) error }) (T, error)) ([]T, error) {
	rows, err := x.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, v)
	}
	return out, s.wrap(rows.Err())
}

// mergeConfig lays the top-level keys of found over old (both JSON
// objects): a sync refreshes the keys it knows and keeps those added by
// hand (VerifyAddress, sealed secrets…). The result is old itself when
// nothing changes, so that a repeated sync compares equal.
func mergeConfig(old, found string) (string, error) {
	if found == "" || found == "{}" {
		return old, nil
	}
	var o, f map[string]json.RawMessage
	if err := json.Unmarshal([]byte(old), &o); err != nil {
		return "", fmt.Errorf("stored Config: %w", err)
	}
	if err := json.Unmarshal([]byte(found), &f); err != nil {
		return "", fmt.Errorf("found Config: %w", err)
	}
	if o == nil {
		o = map[string]json.RawMessage{}
	}
	changed := false
	for k, v := range f {
		if prev, ok := o[k]; !ok || !jsonEqual(prev, v) {
			o[k], changed = v, true
		}
	}
	if !changed {
		return old, nil
	}
	b, err := json.Marshal(o)
	return string(b), err
}

func jsonEqual(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return string(ja) == string(jb)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func msOrZero(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// CertificateFindBySha2 returns the account's newest certificate with this leaf fingerprint.
func (s *DB) CertificateFindBySha2(ctx context.Context, accountID int64, sha2 string) (store.Certificate, error) {
	c, err := scanCertificate(s.db.QueryRowContext(ctx, s.q(`SELECT `+certColumns+` FROM certificates
		WHERE account_id = ? AND sha2 = ? ORDER BY id DESC LIMIT 1`), accountID, sha2))
	return c, s.wrap(err)
}

// AccessScan pages through every account's cloud accesses by ID.
func (s *DB) AccessScan(ctx context.Context, afterID int64, limit int) ([]store.CloudAccess, error) {
	out, _, err := list(ctx, s, `cloud_access`, accessColumns, ` WHERE id > ?`, ` ORDER BY id`+limitOffset(limit, 0),
		[]any{afterID}, 0, 0, scanAccess)
	return out, err
}

// JobSweepTargets lists the products and credentials a job deployed to.
func (s *DB) JobSweepTargets(ctx context.Context, jobID int64) ([]store.SweepTarget, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT r.account_id, r.cloud_name, r.cloud_product, r.cloud_access_id, MIN(r.id)
		FROM workers w JOIN resources r ON r.id = w.resource_id
		WHERE w.job_id = ? AND r.cloud_access_id <> 0
		GROUP BY r.account_id, r.cloud_name, r.cloud_product, r.cloud_access_id
		ORDER BY r.cloud_name, r.cloud_product, r.cloud_access_id`), jobID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.SweepTarget
	for rows.Next() {
		var t store.SweepTarget
		if err := rows.Scan(&t.AccountID, &t.CloudName, &t.CloudProduct, &t.CloudAccessID, &t.ResourceID); err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, t)
	}
	return out, s.wrap(rows.Err())
}
