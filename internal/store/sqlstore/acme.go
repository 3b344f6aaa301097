package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

const issuerColumns = `id, account_id, product_code, directory_url, email, eab_key_id, eab_hmac_enc, key_type, preferred_chain,
	trusted_ca, account_key_enc, account_url, created_ms`

func scanIssuer(row interface{ Scan(...any) error }) (store.Issuer, error) {
	var i store.Issuer
	var created int64
	err := row.Scan(&i.ID, &i.AccountID, &i.ProductCode, &i.DirectoryURL, &i.Email, &i.EabKeyID, &i.EabHmacEnc, &i.KeyType,
		&i.PreferredChain, &i.TrustedCA, &i.AccountKeyEnc, &i.AccountURL, &created)
	i.Created = fromMS(created)
	return i, err
}

// IssuerCreate inserts i; ErrConflict on a duplicate ProductCode in the account.
func (s *DB) IssuerCreate(ctx context.Context, i *store.Issuer) error {
	if i.Created.IsZero() {
		i.Created = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO acme_issuers (account_id, product_code, directory_url, email, eab_key_id,
		eab_hmac_enc, key_type, preferred_chain, trusted_ca, account_key_enc, account_url, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		i.AccountID, i.ProductCode, i.DirectoryURL, i.Email, i.EabKeyID, i.EabHmacEnc, i.KeyType, i.PreferredChain, i.TrustedCA,
		i.AccountKeyEnc, i.AccountURL, ms(i.Created)).Scan(&i.ID)
	return s.wrap(err)
}

// IssuerGet returns the account's issuer named productCode.
func (s *DB) IssuerGet(ctx context.Context, accountID int64, productCode string) (store.Issuer, error) {
	i, err := scanIssuer(s.db.QueryRowContext(ctx, s.q(`SELECT `+issuerColumns+` FROM acme_issuers WHERE account_id = ? AND product_code = ?`),
		accountID, productCode))
	return i, s.wrap(err)
}

// IssuerGetByID returns an issuer of any account.
func (s *DB) IssuerGetByID(ctx context.Context, id int64) (store.Issuer, error) {
	i, err := scanIssuer(s.db.QueryRowContext(ctx, s.q(`SELECT `+issuerColumns+` FROM acme_issuers WHERE id = ?`), id))
	return i, s.wrap(err)
}

// IssuerList returns the account's issuers by ProductCode.
func (s *DB) IssuerList(ctx context.Context, accountID int64) ([]store.Issuer, error) {
	out, _, err := list(ctx, s, `acme_issuers`, issuerColumns, ` WHERE account_id = ?`, ` ORDER BY product_code`,
		[]any{accountID}, 0, 0, scanIssuer)
	return out, err
}

// IssuerDelete deletes an issuer no order in progress uses.
func (s *DB) IssuerDelete(ctx context.Context, accountID int64, productCode string) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		var id int64
		if err := tx.QueryRowContext(ctx, s.q(`SELECT id FROM acme_issuers WHERE account_id = ? AND product_code = ?`),
			accountID, productCode).Scan(&id); err != nil {
			return s.wrap(err)
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM acme_orders WHERE issuer_id = ? AND status IN ('pending', 'verify', 'process')`),
			id).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n > 0 {
			return store.ErrInUse
		}
		_, err := s.exec(ctx, tx, `DELETE FROM acme_issuers WHERE id = ?`, id)
		return err
	})
}

// IssuerSetAccount records the ACME account of an issuer that has none.
func (s *DB) IssuerSetAccount(ctx context.Context, id int64, keyEnc []byte, url string) error {
	n, err := s.exec(ctx, s.db, `UPDATE acme_issuers SET account_key_enc = ?, account_url = ? WHERE id = ? AND account_url = ''`, keyEnc, url, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrConflict
	}
	return nil
}

const orderColumns = `id, account_id, issuer_id, product_code, domains, validate_type, manual, csr_pem, key_enc, csr_id, contact,
	status, order_url, challenges, message, cert_id, cert_pem, renew_of, renew_at_ms, renewal_id, renew_attempts, next_run_ms, attempts,
	acme_requests, version, created_ms, modified_ms`

func scanOrder(row interface{ Scan(...any) error }) (store.Order, error) {
	var o store.Order
	var domains, challenges string
	var manual int
	var renewAt, nextRun, created, modified int64
	err := row.Scan(&o.ID, &o.AccountID, &o.IssuerID, &o.ProductCode, &domains, &o.ValidateType, &manual, &o.CsrPEM, &o.KeyEnc,
		&o.CsrID, &o.Contact, &o.Status, &o.OrderURL, &challenges, &o.Message, &o.CertID, &o.CertPEM, &o.RenewOf, &renewAt, &o.RenewalID,
		&o.RenewAttempts, &nextRun, &o.Attempts, &o.ACMERequests, &o.Version, &created, &modified)
	o.Domains = fromJSON[[]string](domains)
	o.Challenges = fromJSON[[]store.Challenge](challenges)
	o.Manual = manual != 0
	o.RenewAt, o.NextRun, o.Created, o.Modified = fromMS(renewAt), fromMS(nextRun), fromMS(created), fromMS(modified)
	return o, err
}

// OrderCreate inserts o with Version 1.
func (s *DB) OrderCreate(ctx context.Context, o *store.Order) error {
	now := time.Now()
	if o.Created.IsZero() {
		o.Created = now
	}
	o.Modified, o.Version = o.Created, 1
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO acme_orders (account_id, issuer_id, product_code, domains, validate_type,
		manual, csr_pem, key_enc, csr_id, contact, status, order_url, challenges, message, cert_id, cert_pem, renew_of, renew_at_ms,
		renewal_id, renew_attempts, next_run_ms, attempts, acme_requests, version, created_ms, modified_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		o.AccountID, o.IssuerID, o.ProductCode, jsonText(o.Domains), o.ValidateType, b2i(o.Manual), o.CsrPEM, o.KeyEnc, o.CsrID,
		o.Contact, string(o.Status), o.OrderURL, jsonText(o.Challenges), o.Message, o.CertID, o.CertPEM, o.RenewOf, ms(o.RenewAt), o.RenewalID,
		o.RenewAttempts, ms(o.NextRun), o.Attempts, o.ACMERequests, o.Version, ms(o.Created), ms(o.Modified)).Scan(&o.ID)
	return s.wrap(err)
}

// OrderGet returns one order of the account.
func (s *DB) OrderGet(ctx context.Context, accountID, id int64) (store.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.q(`SELECT `+orderColumns+` FROM acme_orders WHERE account_id = ? AND id = ?`), accountID, id))
	return o, s.wrap(err)
}

// OrderGetByID returns an order of any account.
func (s *DB) OrderGetByID(ctx context.Context, id int64) (store.Order, error) {
	o, err := scanOrder(s.db.QueryRowContext(ctx, s.q(`SELECT `+orderColumns+` FROM acme_orders WHERE id = ?`), id))
	return o, s.wrap(err)
}

// OrderUpdate writes o when its Version is current, and increments it.
func (s *DB) OrderUpdate(ctx context.Context, o *store.Order) error {
	o.Modified = time.Now()
	n, err := s.exec(ctx, s.db, `UPDATE acme_orders SET csr_pem = ?, key_enc = ?, status = ?, order_url = ?, challenges = ?,
		message = ?, cert_id = ?, cert_pem = ?, renew_at_ms = ?, renewal_id = ?, renew_attempts = ?, next_run_ms = ?, attempts = ?,
		acme_requests = ?, version = version + 1, modified_ms = ? WHERE id = ? AND version = ?`,
		o.CsrPEM, o.KeyEnc, string(o.Status), o.OrderURL, jsonText(o.Challenges), o.Message, o.CertID, o.CertPEM, ms(o.RenewAt), o.RenewalID,
		o.RenewAttempts, ms(o.NextRun), o.Attempts, o.ACMERequests, ms(o.Modified), o.ID, o.Version)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrConflict
	}
	o.Version++
	return nil
}

// OrderDelete deletes an order and its http-01 answers.
func (s *DB) OrderDelete(ctx context.Context, accountID, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM acme_orders WHERE account_id = ? AND id = ?`, accountID, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrNotFound
		}
		_, err = s.exec(ctx, tx, `DELETE FROM acme_tokens WHERE order_id = ?`, id)
		return err
	})
}

const orderActive = `status IN ('pending', 'verify', 'process')`

// OrderDue lists orders in progress whose next run has come.
func (s *DB) OrderDue(ctx context.Context, now time.Time, limit int) ([]store.Order, error) {
	out, _, err := list(ctx, s, `acme_orders`, orderColumns, ` WHERE `+orderActive+` AND next_run_ms <= ?`, ` ORDER BY next_run_ms, id`,
		[]any{ms(now)}, 0, 0, scanOrder)
	if len(out) > limit && limit > 0 {
		out = out[:limit]
	}
	return out, err
}

// OrderNextDue is the earliest next run of an order in progress.
func (s *DB) OrderNextDue(ctx context.Context) (time.Time, bool, error) {
	var v sql.NullInt64
	if err := s.db.QueryRowContext(ctx, `SELECT MIN(next_run_ms) FROM acme_orders WHERE `+orderActive).Scan(&v); err != nil {
		return time.Time{}, false, s.wrap(err)
	}
	if !v.Valid {
		return time.Time{}, false, nil
	}
	return fromMS(v.Int64), true, nil
}

// OrderRenewDue lists issued orders due for renewal with none under way.
func (s *DB) OrderRenewDue(ctx context.Context, now time.Time, limit int) ([]store.Order, error) {
	out, _, err := list(ctx, s, `acme_orders`, orderColumns,
		` WHERE status = 'issued' AND renewal_id = 0 AND renew_at_ms > 0 AND renew_at_ms <= ?`, ` ORDER BY renew_at_ms, id`,
		[]any{ms(now)}, limit, 0, scanOrder)
	return out, err
}

// OrderByCerts returns the orders that issued certIDs.
func (s *DB) OrderByCerts(ctx context.Context, accountID int64, certIDs []int64) ([]store.Order, error) {
	if len(certIDs) == 0 {
		return nil, nil
	}
	out, _, err := list(ctx, s, `acme_orders`, orderColumns, ` WHERE account_id = ? AND cert_id IN `+inList(len(certIDs)), ` ORDER BY id`,
		append([]any{accountID}, int64Args(certIDs)...), 0, 0, scanOrder)
	return out, err
}

// OrderCounts counts the account's orders of an issuer.
func (s *DB) OrderCounts(ctx context.Context, accountID int64, productCode string) (total, issued int64, err error) {
	err = s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'issued' THEN 1 ELSE 0 END), 0)
		FROM acme_orders WHERE account_id = ? AND product_code = ?`), accountID, productCode).Scan(&total, &issued)
	return total, issued, s.wrap(err)
}

// ChallengeTokenPut publishes an http-01 answer (idempotent).
func (s *DB) ChallengeTokenPut(ctx context.Context, orderID int64, token, keyAuth string) error {
	_, err := s.exec(ctx, s.db, `INSERT INTO acme_tokens (token, order_id, key_auth) VALUES (?, ?, ?)
		ON CONFLICT (token) DO UPDATE SET order_id = excluded.order_id, key_auth = excluded.key_auth`, token, orderID, keyAuth)
	return err
}

// ChallengeTokenGet reads an http-01 answer.
func (s *DB) ChallengeTokenGet(ctx context.Context, token string) (string, error) {
	var v string
	err := s.db.QueryRowContext(ctx, s.q(`SELECT key_auth FROM acme_tokens WHERE token = ?`), token).Scan(&v)
	return v, s.wrap(err)
}

// ChallengeTokenDelete removes an order's http-01 answers.
func (s *DB) ChallengeTokenDelete(ctx context.Context, orderID int64) error {
	_, err := s.exec(ctx, s.db, `DELETE FROM acme_tokens WHERE order_id = ?`, orderID)
	return err
}

const csrColumns = `id, account_id, name, csr_pem, key_enc, common_name, sans, algorithm, key_size, key_sha2, corp_name,
	country_code, department, locality, province, created_ms`

func scanCsr(row interface{ Scan(...any) error }) (store.Csr, error) {
	var c store.Csr
	var sans string
	var created int64
	err := row.Scan(&c.ID, &c.AccountID, &c.Name, &c.CsrPEM, &c.KeyEnc, &c.CommonName, &sans, &c.Algorithm, &c.KeySize, &c.KeySha2,
		&c.CorpName, &c.CountryCode, &c.Department, &c.Locality, &c.Province, &created)
	c.SANs, c.Created = fromJSON[[]string](sans), fromMS(created)
	return c, err
}

// CsrCreate inserts c and sets its ID.
func (s *DB) CsrCreate(ctx context.Context, c *store.Csr) error {
	if c.Created.IsZero() {
		c.Created = time.Now()
	}
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO csrs (account_id, name, csr_pem, key_enc, common_name, sans, algorithm,
		key_size, key_sha2, corp_name, country_code, department, locality, province, created_ms)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
		c.AccountID, c.Name, c.CsrPEM, c.KeyEnc, c.CommonName, jsonText(c.SANs), c.Algorithm, c.KeySize, c.KeySha2, c.CorpName,
		c.CountryCode, c.Department, c.Locality, c.Province, ms(c.Created)).Scan(&c.ID)
	return s.wrap(err)
}

// CsrGet returns one CSR of the account.
func (s *DB) CsrGet(ctx context.Context, accountID, id int64) (store.Csr, error) {
	c, err := scanCsr(s.db.QueryRowContext(ctx, s.q(`SELECT `+csrColumns+` FROM csrs WHERE account_id = ? AND id = ?`), accountID, id))
	return c, s.wrap(err)
}

// CsrList pages the account's CSRs, newest first.
func (s *DB) CsrList(ctx context.Context, p store.CsrListParams) ([]store.Csr, int64, error) {
	where := ` WHERE account_id = ?`
	args := []any{p.AccountID}
	if p.Keyword != "" {
		where += ` AND (LOWER(name) LIKE ? ESCAPE '\' OR LOWER(sans) LIKE ? ESCAPE '\' OR LOWER(common_name) LIKE ? ESCAPE '\')`
		k := like(p.Keyword)
		args = append(args, k, k, k)
	}
	if p.Algorithm != "" {
		where += ` AND algorithm = ?`
		args = append(args, p.Algorithm)
	}
	return list(ctx, s, `csrs`, csrColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanCsr)
}

// CsrSetKey sets the key of a CSR.
func (s *DB) CsrSetKey(ctx context.Context, accountID, id int64, keyEnc []byte) error {
	n, err := s.exec(ctx, s.db, `UPDATE csrs SET key_enc = ? WHERE account_id = ? AND id = ?`, keyEnc, accountID, id)
	if err != nil {
		return err
	}
	if n == 0 {
		return store.ErrNotFound
	}
	return nil
}

// CsrDelete deletes one CSR of the account.
func (s *DB) CsrDelete(ctx context.Context, accountID, id int64) error {
	return s.deleteUnreferenced(ctx, "csrs", "", accountID, id)
}
