package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// AccessCreate inserts a cloud access and sets its ID.
func (s *DB) AccessCreate(ctx context.Context, a *store.CloudAccess) error {
	if a.Created.IsZero() {
		a.Created = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO cloud_access (account_id, cloud_name, name, secret_id, secret_key_enc, config, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`), a.AccountID, a.CloudName, a.Name, a.SecretID, a.SecretKeyEnc, a.Config, ms(a.Created)).Scan(&a.ID)
	return s.wrap(err)
}

const accessColumns = `id, account_id, cloud_name, name, secret_id, secret_key_enc, config, created_ms`

func scanAccess(row interface{ Scan(...any) error }) (store.CloudAccess, error) {
	var a store.CloudAccess
	var created int64
	err := row.Scan(&a.ID, &a.AccountID, &a.CloudName, &a.Name, &a.SecretID, &a.SecretKeyEnc, &a.Config, &created)
	a.Created = fromMS(created)
	return a, err
}

// AccessGet returns one cloud access of the account.
func (s *DB) AccessGet(ctx context.Context, accountID, id int64) (store.CloudAccess, error) {
	a, err := scanAccess(s.db.QueryRowContext(ctx, s.q(`SELECT `+accessColumns+` FROM cloud_access WHERE account_id = ? AND id = ?`), accountID, id))
	return a, s.wrap(err)
}

// AccessList pages the account's cloud accesses.
func (s *DB) AccessList(ctx context.Context, p store.AccessListParams) ([]store.CloudAccess, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.CloudName != "" {
		where += ` AND cloud_name = ?`
		args = append(args, p.CloudName)
	}
	if p.SecretID != "" {
		where += ` AND secret_id = ?`
		args = append(args, p.SecretID)
	}
	return list(ctx, s, `cloud_access`, accessColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanAccess)
}

// AccessDelete deletes a cloud access unless a resource of an unfinished job uses it.
func (s *DB) AccessDelete(ctx context.Context, accountID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// Another account's access is not found, in use or not.
		var found int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM cloud_access WHERE account_id = ? AND id = ?`), accountID, id).Scan(&found); err != nil {
			return s.wrap(err)
		}
		if found == 0 {
			return store.ErrNotFound
		}
		var refs int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM resources res JOIN job_refs r ON r.kind = 'resource' AND r.ref_id = res.id
			JOIN jobs j ON j.id = r.job_id WHERE res.cloud_access_id = ? AND j.status NOT IN ('success', 'error')`), id).Scan(&refs); err != nil {
			return s.wrap(err)
		}
		if refs > 0 {
			return store.ErrInUse
		}
		n, err := s.exec(ctx, tx, `DELETE FROM cloud_access WHERE account_id = ? AND id = ?`, accountID, id)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

const resourceColumns = `id, account_id, cloud_name, cloud_product, domain, cloud_access_id, name, region_id, instance_id,
	listener_port, config, current_cert_id, created_ms, modified_ms, listener_id, discovery_key, status, default_resource,
	enable_https, bound_sha2, bound_not_after_ms`

func scanResource(row interface{ Scan(...any) error }) (store.Resource, error) {
	var r store.Resource
	var created, modified, notAfter int64
	var defaultResource, https int
	err := row.Scan(&r.ID, &r.AccountID, &r.CloudName, &r.CloudProduct, &r.Domain, &r.CloudAccessID, &r.Name, &r.RegionID,
		&r.InstanceID, &r.ListenerPort, &r.Config, &r.CurrentCertID, &created, &modified, &r.ListenerID, &r.DiscoveryKey,
		&r.Status, &defaultResource, &https, &r.BoundSha2, &notAfter)
	r.Created, r.Modified = fromMS(created), fromMS(modified)
	r.DefaultResource, r.EnableHTTPS = defaultResource != 0, https != 0
	if notAfter != 0 {
		r.BoundNotAfter = fromMS(notAfter)
	}
	return r, err
}

// ResourceCreate inserts r with its claims and sets its ID.
func (s *DB) ResourceCreate(ctx context.Context, r *store.Resource) error {
	now := time.Now()
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, s.q(`INSERT INTO resources (account_id, cloud_name, cloud_product, domain, cloud_access_id, name,
			region_id, instance_id, listener_port, listener_id, config, current_cert_id, created_ms, modified_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) RETURNING id`), r.AccountID, r.CloudName, r.CloudProduct, r.Domain,
			r.CloudAccessID, r.Name, r.RegionID, r.InstanceID, r.ListenerPort, r.ListenerID, r.Config, ms(now), ms(now)).Scan(&id)
		if err != nil {
			return s.wrap(err)
		}
		return s.claim(ctx, tx, id, r.Claims)
	})
	if err != nil {
		return err
	}
	r.ID, r.Created, r.Modified = id, now, now
	r.Status, r.EnableHTTPS = store.ResourceOnline, true
	return nil
}

// claim replaces resource id's claims with claims, inside tx. A claim
// another resource holds fails on the primary key: ErrClaimed.
func (s *DB) claim(ctx context.Context, tx *sql.Tx, id int64, claims []string) error {
	if _, err := s.exec(ctx, tx, `DELETE FROM resource_claims WHERE resource_id = ?`, id); err != nil {
		return err
	}
	for _, c := range claims {
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO resource_claims (claim, resource_id) VALUES (?, ?)`), c, id); err != nil {
			if errors.Is(s.wrap(err), store.ErrConflict) {
				return fmt.Errorf("%w: %s", store.ErrClaimed, c)
			}
			return s.wrap(err)
		}
	}
	return nil
}

// ResourceGet returns one resource of the account.
func (s *DB) ResourceGet(ctx context.Context, accountID, id int64) (store.Resource, error) {
	r, err := scanResource(s.db.QueryRowContext(ctx, s.q(`SELECT `+resourceColumns+` FROM resources WHERE account_id = ? AND id = ?`), accountID, id))
	return r, s.wrap(err)
}

// ResourceGetMany returns the account's resources among ids (missing ones are absent).
func (s *DB) ResourceGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Resource, error) {
	out := make([]store.Resource, 0, len(ids))
	for start := 0; start < len(ids); start += 500 {
		chunk := ids[start:min(start+500, len(ids))]
		// By primary key alone, the account checked here: with account_id
		// in the WHERE, PostgreSQL without statistics read every resource
		// of the account through resources_account and filtered the IDs
		// (10 ms for 39 of 10,000 resources).
		rs, _, err := list(ctx, s, `resources`, resourceColumns, ` WHERE id IN `+inList(padLen(len(chunk))), ` ORDER BY id`,
			padIDs(chunk), 0, 0, scanResource)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			if r.AccountID == accountID {
				out = append(out, r)
			}
		}
	}
	return out, nil
}

// ResourceUpdate rewrites the editable fields of r and replaces its claims.
func (s *DB) ResourceUpdate(ctx context.Context, r *store.Resource) error {
	r.Modified = time.Now()
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE resources SET cloud_name = ?, cloud_product = ?, domain = ?, cloud_access_id = ?, name = ?,
			region_id = ?, instance_id = ?, listener_port = ?, listener_id = ?, config = ?, modified_ms = ? WHERE account_id = ? AND id = ?`,
			r.CloudName, r.CloudProduct, r.Domain, r.CloudAccessID, r.Name, r.RegionID, r.InstanceID, r.ListenerPort, r.ListenerID, r.Config,
			ms(r.Modified), r.AccountID, r.ID)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		return s.claim(ctx, tx, r.ID, r.Claims)
	})
}

// ResourceList pages the account's resources.
func (s *DB) ResourceList(ctx context.Context, p store.ResourceListParams) ([]store.Resource, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.CloudName != "" {
		where += ` AND cloud_name = ?`
		args = append(args, p.CloudName)
	}
	if p.CloudProduct != "" {
		where += ` AND cloud_product = ?`
		args = append(args, p.CloudProduct)
	}
	if p.Keyword != "" {
		where += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(domain) LIKE ? ESCAPE '\' OR LOWER(instance_id) LIKE ? ESCAPE '\')`
		k := like(p.Keyword)
		args = append(args, k, k, k)
	}
	if len(p.CertIDs) > 0 {
		where += ` AND current_cert_id IN ` + inList(len(p.CertIDs))
		args = append(args, int64Args(p.CertIDs)...)
	}
	if p.ByAccess {
		if len(p.AccessIDs) == 0 {
			where += ` AND 1 = 0`
		} else {
			where += ` AND cloud_access_id IN ` + inList(len(p.AccessIDs))
			args = append(args, int64Args(p.AccessIDs)...)
		}
	}
	return list(ctx, s, `resources`, resourceColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanResource)
}

// ResourceDelete deletes a resource no unfinished job references.
func (s *DB) ResourceDelete(ctx context.Context, accountID, id int64) error {
	return s.deleteUnreferenced(ctx, "resources", "resource", accountID, id)
}

// ResourceCountByProduct counts the account's resources per product.
func (s *DB) ResourceCountByProduct(ctx context.Context, accountID int64) ([]store.ProductCount, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT cloud_name, cloud_product, COUNT(*) FROM resources WHERE account_id = ?
		GROUP BY cloud_name, cloud_product ORDER BY cloud_name, cloud_product`), accountID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.ProductCount
	for rows.Next() {
		var pc store.ProductCount
		if err := rows.Scan(&pc.CloudName, &pc.CloudProduct, &pc.Count); err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, pc)
	}
	return out, s.wrap(rows.Err())
}

const contactColumns = `id, account_id, name, email, mobile, webhooks, created_ms`

func scanContact(row interface{ Scan(...any) error }) (store.Contact, error) {
	var c store.Contact
	var hooks string
	var created int64
	err := row.Scan(&c.ID, &c.AccountID, &c.Name, &c.Email, &c.Mobile, &hooks, &created)
	c.Webhooks = fromJSON[[]string](hooks)
	c.Created = fromMS(created)
	return c, err
}

// ContactCreate inserts c and sets its ID.
func (s *DB) ContactCreate(ctx context.Context, c *store.Contact) error {
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO contacts (account_id, name, email, mobile, webhooks, created_ms)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), c.AccountID, c.Name, c.Email, c.Mobile, jsonText(nonNil(c.Webhooks)), ms(c.Created)).Scan(&c.ID)
	return s.wrap(err)
}

// ContactGet returns one contact of the account.
func (s *DB) ContactGet(ctx context.Context, accountID, id int64) (store.Contact, error) {
	c, err := scanContact(s.db.QueryRowContext(ctx, s.q(`SELECT `+contactColumns+` FROM contacts WHERE account_id = ? AND id = ?`), accountID, id))
	return c, s.wrap(err)
}

// ContactGetMany returns the account's contacts among ids.
func (s *DB) ContactGetMany(ctx context.Context, accountID int64, ids []int64) ([]store.Contact, error) {
	cs, _, err := list(ctx, s, `contacts`, contactColumns, ` WHERE account_id = ? AND id IN `+inList(len(ids)), ` ORDER BY id`,
		append([]any{accountID}, int64Args(ids)...), 0, 0, scanContact)
	return cs, err
}

// ContactUpdate rewrites the editable fields of c.
func (s *DB) ContactUpdate(ctx context.Context, c *store.Contact) error {
	n, err := s.exec(ctx, s.db, `UPDATE contacts SET name = ?, email = ?, mobile = ?, webhooks = ? WHERE account_id = ? AND id = ?`,
		c.Name, c.Email, c.Mobile, jsonText(nonNil(c.Webhooks)), c.AccountID, c.ID)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// ContactList pages the account's contacts.
func (s *DB) ContactList(ctx context.Context, p store.ContactListParams) ([]store.Contact, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.Keyword != "" {
		where += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(email) LIKE ? ESCAPE '\' OR LOWER(mobile) LIKE ? ESCAPE '\')`
		k := like(p.Keyword)
		args = append(args, k, k, k)
	}
	return list(ctx, s, `contacts`, contactColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanContact)
}

// ContactDelete deletes a contact no unfinished job references.
func (s *DB) ContactDelete(ctx context.Context, accountID, id int64) error {
	return s.deleteUnreferenced(ctx, "contacts", "contact", accountID, id)
}

func nonNil(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

// list runs a count and a paged select over table with the same filter.
// limit 0 returns every row (and skips the count).
func list[T any](ctx context.Context, s *DB, table, columns, where, order string, args []any, limit, offset int,
	scan func(interface{ Scan(...any) error }) (T, error)) ([]T, int64, error) {
	var total int64 = -1
	if limit > 0 {
		if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+table+where), args...).Scan(&total); err != nil {
			return nil, 0, s.wrap(err)
		}
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+columns+` FROM `+table+where+order+limitOffset(limit, offset)), args...)
	if err != nil {
		return nil, 0, s.wrap(err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, 0, s.wrap(err)
		}
		out = append(out, v)
	}
	if total < 0 {
		total = int64(len(out))
	}
	return out, total, s.wrap(rows.Err())
}
