package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const certColumns = `id, account_id, name, cert_pem, key_enc, common_name, sans, issuer, org_name, country, province, city,
	fingerprint, sha2, serial_no, algorithm, not_before_ms, not_after_ms, created_ms`

func scanCertificate(row interface{ Scan(...any) error }) (store.Certificate, error) {
	var c store.Certificate
	var sans string
	var nb, na, created int64
	err := row.Scan(&c.ID, &c.AccountID, &c.Name, &c.CertPEM, &c.KeyEnc, &c.CommonName, &sans, &c.Issuer, &c.OrgName,
		&c.Country, &c.Province, &c.City, &c.Fingerprint, &c.Sha2, &c.SerialNo, &c.Algorithm, &nb, &na, &created)
	c.SANs = fromJSON[[]string](sans)
	c.NotBefore, c.NotAfter, c.Created = fromMS(nb), fromMS(na), fromMS(created)
	return c, err
}

// CertificateCreate inserts c and sets its ID; ErrConflict on a duplicate name.
func (s *DB) CertificateCreate(ctx context.Context, c *store.Certificate) error {
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO certificates (account_id, name, cert_pem, key_enc, common_name, sans, issuer,
		org_name, country, province, city, fingerprint, sha2, serial_no, algorithm, not_before_ms, not_after_ms, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		c.AccountID, c.Name, c.CertPEM, c.KeyEnc, c.CommonName, jsonText(c.SANs), c.Issuer, c.OrgName, c.Country, c.Province,
		c.City, c.Fingerprint, c.Sha2, c.SerialNo, c.Algorithm, ms(c.NotBefore), ms(c.NotAfter), ms(c.Created)).Scan(&c.ID)
	return s.wrap(err)
}

// CertificateGet returns one certificate of the account.
func (s *DB) CertificateGet(ctx context.Context, accountID, id int64) (store.Certificate, error) {
	c, err := scanCertificate(s.db.QueryRowContext(ctx, s.q(`SELECT `+certColumns+` FROM certificates WHERE account_id = ? AND id = ?`), accountID, id))
	return c, s.wrap(err)
}

// CertificateList pages the account's certificates, newest first.
func (s *DB) CertificateList(ctx context.Context, p store.CertificateListParams) ([]store.Certificate, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.Keyword != "" {
		where += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(sans) LIKE ? ESCAPE '\' OR LOWER(common_name) LIKE ? ESCAPE '\')`
		k := like(p.Keyword)
		args = append(args, k, k, k)
	}
	if !p.NotAfterFrom.IsZero() {
		where += ` AND not_after_ms >= ?`
		args = append(args, ms(p.NotAfterFrom))
	}
	if !p.NotAfterTo.IsZero() {
		where += ` AND not_after_ms < ?`
		args = append(args, ms(p.NotAfterTo))
	}
	return list(ctx, s, `certificates`, certColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanCertificate)
}

// CertificateDelete deletes a certificate no unfinished job references.
func (s *DB) CertificateDelete(ctx context.Context, accountID, id int64) error {
	return s.deleteUnreferenced(ctx, "certificates", "cert", accountID, id)
}

// deleteUnreferenced deletes row id of table unless an unfinished job refers
// to it through job_refs kind; ErrInUse or ErrNotFound otherwise.
func (s *DB) deleteUnreferenced(ctx context.Context, table, kind string, accountID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM `+table+` WHERE account_id = ? AND id = ?`), accountID, id).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n == 0 {
			return store.ErrNotFound
		}
		if kind != "" {
			var refs int
			if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM job_refs r JOIN jobs j ON j.id = r.job_id
				WHERE r.kind = ? AND r.ref_id = ? AND j.status NOT IN ('success', 'error')`), kind, id).Scan(&refs); err != nil {
				return s.wrap(err)
			}
			if refs > 0 {
				return store.ErrInUse
			}
		}
		_, err := s.exec(ctx, tx, `DELETE FROM `+table+` WHERE account_id = ? AND id = ?`, accountID, id)
		return err
	})
}
