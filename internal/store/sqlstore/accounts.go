package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// AccountEnsure returns the ID of the account named name, creating it.
func (s *DB) AccountEnsure(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id FROM accounts WHERE name = ?`), name).Scan(&id)
	if err == nil {
		return id, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, s.wrap(err)
	}
	err = s.db.QueryRowContext(ctx, s.q(`INSERT INTO accounts (name, created_ms) VALUES (?, ?) RETURNING id`), name, ms(time.Now())).Scan(&id)
	if err != nil {
		if errors.Is(s.wrap(err), store.ErrConflict) { // created concurrently
			return s.AccountEnsure(ctx, name)
		}
		return 0, s.wrap(err)
	}
	return id, nil
}

// AccessKeyUpsert creates or replaces an access key.
func (s *DB) AccessKeyUpsert(ctx context.Context, k store.AccessKey) error {
	if k.Created.IsZero() {
		k.Created = time.Now()
	}
	_, err := s.exec(ctx, s.db, `INSERT INTO access_keys (id, account_id, user_id, secret_enc, status, created_ms) VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, user_id = excluded.user_id, secret_enc = excluded.secret_enc, status = excluded.status`,
		k.ID, k.AccountID, k.UserID, k.SecretEnc, k.Status, ms(k.Created))
	return err
}

// AccessKeyGet returns an access key by ID.
func (s *DB) AccessKeyGet(ctx context.Context, id string) (store.AccessKey, error) {
	var k store.AccessKey
	var created int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT id, account_id, user_id, secret_enc, status, created_ms FROM access_keys WHERE id = ?`), id).
		Scan(&k.ID, &k.AccountID, &k.UserID, &k.SecretEnc, &k.Status, &created)
	if err != nil {
		return k, s.wrap(err)
	}
	k.Created = fromMS(created)
	return k, nil
}

const accountCols = `id, name, created_ms, egress_allow, local_root`

func scanAccount(row interface{ Scan(...any) error }) (store.Account, error) {
	var a store.Account
	var created int64
	var egress string
	if err := row.Scan(&a.ID, &a.Name, &created, &egress, &a.LocalRoot); err != nil {
		return a, err
	}
	a.Created = fromMS(created)
	a.EgressAllow = fromJSON[[]string](egress)
	return a, nil
}

// AccountGet returns an account by ID.
func (s *DB) AccountGet(ctx context.Context, id int64) (store.Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE id = ?`), id))
	return a, s.wrap(err)
}

// AccountGetByName returns an account by name.
func (s *DB) AccountGetByName(ctx context.Context, name string) (store.Account, error) {
	a, err := scanAccount(s.db.QueryRowContext(ctx, s.q(`SELECT `+accountCols+` FROM accounts WHERE name = ?`), name))
	return a, s.wrap(err)
}

// AccountSetSettings replaces an account's settings.
func (s *DB) AccountSetSettings(ctx context.Context, id int64, set store.AccountSettings) error {
	egress := set.EgressAllow
	if egress == nil {
		egress = []string{}
	}
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE accounts SET egress_allow = ?, local_root = ? WHERE id = ?`),
		jsonText(egress), set.LocalRoot, id)
	if err != nil {
		return s.wrap(err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return s.wrap(err)
	} else if n == 0 {
		return store.ErrNotFound
	}
	return nil
}
