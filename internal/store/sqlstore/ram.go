package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// bumpRAM advances the RAM generation inside a write transaction.
func (s *DB) bumpRAM(ctx context.Context, tx *sql.Tx) error {
	_, err := s.exec(ctx, tx, `UPDATE ram_generation SET gen = gen + 1 WHERE id = 1`)
	return err
}

// ramTx runs fn in a transaction that also bumps the RAM generation.
func (s *DB) ramTx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return s.bumpRAM(ctx, tx)
	})
}

// AccountCreate creates the account named name; ErrConflict if it exists.
func (s *DB) AccountCreate(ctx context.Context, name string) (int64, error) {
	var id int64
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO accounts (name, created_ms) VALUES (?, ?) RETURNING id`), name, ms(time.Now())).Scan(&id)
	return id, s.wrap(err)
}

// AccessKeyList returns the keys of one user of the account (0: root keys).
func (s *DB) AccessKeyList(ctx context.Context, accountID, userID int64) ([]store.AccessKey, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT id, account_id, user_id, status, created_ms FROM access_keys
		WHERE account_id = ? AND user_id = ? ORDER BY created_ms, id`), accountID, userID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.AccessKey
	for rows.Next() {
		var k store.AccessKey
		var created int64
		if err := rows.Scan(&k.ID, &k.AccountID, &k.UserID, &k.Status, &created); err != nil {
			return nil, s.wrap(err)
		}
		k.Created = fromMS(created)
		out = append(out, k)
	}
	return out, s.wrap(rows.Err())
}

// AccessKeyCreate inserts a new key, refusing more than max keys per user.
func (s *DB) AccessKeyCreate(ctx context.Context, k store.AccessKey, max int) error {
	if k.Created.IsZero() {
		k.Created = time.Now()
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if s.d.Name == "postgres" { // serialise concurrent creates for one user
			if _, err := s.exec(ctx, tx, `SELECT id FROM ram_users WHERE account_id = ? AND id = ? FOR UPDATE`, k.AccountID, k.UserID); err != nil {
				return err
			}
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM access_keys WHERE account_id = ? AND user_id = ?`), k.AccountID, k.UserID).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n >= max {
			return store.ErrLimitExceeded
		}
		_, err := s.exec(ctx, tx, `INSERT INTO access_keys (id, account_id, user_id, secret_enc, status, created_ms) VALUES (?, ?, ?, ?, ?, ?)`,
			k.ID, k.AccountID, k.UserID, k.SecretEnc, k.Status, ms(k.Created))
		return err
	})
}

// AccessKeySetStatus sets a user's key Active or Inactive.
func (s *DB) AccessKeySetStatus(ctx context.Context, accountID, userID int64, id string, status store.AccessKeyStatus) error {
	n, err := s.exec(ctx, s.db, `UPDATE access_keys SET status = ? WHERE account_id = ? AND user_id = ? AND id = ?`, status, accountID, userID, id)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// AccessKeyDelete deletes a user's key.
func (s *DB) AccessKeyDelete(ctx context.Context, accountID, userID int64, id string) error {
	n, err := s.exec(ctx, s.db, `DELETE FROM access_keys WHERE account_id = ? AND user_id = ? AND id = ?`, accountID, userID, id)
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

const userColumns = `id, account_id, name, display_name, email, mobile, comments, created_ms, updated_ms`

func scanUser(sc interface{ Scan(...any) error }) (store.RAMUser, error) {
	var u store.RAMUser
	var c, m int64
	err := sc.Scan(&u.ID, &u.AccountID, &u.Name, &u.DisplayName, &u.Email, &u.Mobile, &u.Comments, &c, &m)
	u.Created, u.Updated = fromMS(c), fromMS(m)
	return u, err
}

// RAMUserCreate inserts a user; ErrConflict if the name is taken.
func (s *DB) RAMUserCreate(ctx context.Context, u *store.RAMUser) error {
	now := time.Now()
	u.Created, u.Updated = now, now
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		return s.wrap(tx.QueryRowContext(ctx, s.q(`INSERT INTO ram_users (account_id, name, display_name, email, mobile, comments, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), u.AccountID, u.Name, u.DisplayName, u.Email, u.Mobile, u.Comments, ms(now), ms(now)).Scan(&u.ID))
	})
}

// RAMUserGet returns the account's user by name.
func (s *DB) RAMUserGet(ctx context.Context, accountID int64, name string) (store.RAMUser, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM ram_users WHERE account_id = ? AND name = ?`), accountID, name))
	return u, s.wrap(err)
}

// RAMUserGetByID returns the account's user by ID.
func (s *DB) RAMUserGetByID(ctx context.Context, accountID, id int64) (store.RAMUser, error) {
	u, err := scanUser(s.db.QueryRowContext(ctx, s.q(`SELECT `+userColumns+` FROM ram_users WHERE account_id = ? AND id = ?`), accountID, id))
	return u, s.wrap(err)
}

// RAMUserUpdate rewrites a user's fields.
func (s *DB) RAMUserUpdate(ctx context.Context, u *store.RAMUser) error {
	u.Updated = time.Now()
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `UPDATE ram_users SET name = ?, display_name = ?, email = ?, mobile = ?, comments = ?, updated_ms = ?
			WHERE account_id = ? AND id = ?`, u.Name, u.DisplayName, u.Email, u.Mobile, u.Comments, ms(u.Updated), u.AccountID, u.ID)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMUserDelete deletes a user that has no access keys.
func (s *DB) RAMUserDelete(ctx context.Context, accountID, id int64) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		var keys int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM access_keys WHERE account_id = ? AND user_id = ?`), accountID, id).Scan(&keys); err != nil {
			return s.wrap(err)
		}
		if keys > 0 {
			return store.ErrInUse
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM ram_group_members WHERE user_id = ?
			AND EXISTS (SELECT 1 FROM ram_users u WHERE u.id = ? AND u.account_id = ?)`, id, id, accountID); err != nil {
			return err
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM ram_attachments WHERE account_id = ? AND principal_type = 'User' AND principal_id = ?`, accountID, id); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, `DELETE FROM ram_users WHERE account_id = ? AND id = ?`, accountID, id)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMUserList pages the account's users by ID.
func (s *DB) RAMUserList(ctx context.Context, p store.RAMListParams) ([]store.RAMUser, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+userColumns+` FROM ram_users WHERE account_id = ? AND id > ? ORDER BY id`+limitOffset(p.Limit, 0)), p.AccountID, p.AfterID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMUser
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, u)
	}
	return out, s.wrap(rows.Err())
}

const groupColumns = `g.id, g.account_id, g.name, g.comments, g.created_ms, g.updated_ms`

func scanGroup(sc interface{ Scan(...any) error }, extra ...any) (store.RAMGroup, error) {
	var g store.RAMGroup
	var c, m int64
	err := sc.Scan(append([]any{&g.ID, &g.AccountID, &g.Name, &g.Comments, &c, &m}, extra...)...)
	g.Created, g.Updated = fromMS(c), fromMS(m)
	return g, err
}

// RAMGroupCreate inserts a group; ErrConflict if the name is taken.
func (s *DB) RAMGroupCreate(ctx context.Context, g *store.RAMGroup) error {
	now := time.Now()
	g.Created, g.Updated = now, now
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		return s.wrap(tx.QueryRowContext(ctx, s.q(`INSERT INTO ram_groups (account_id, name, comments, created_ms, updated_ms)
			VALUES (?, ?, ?, ?, ?) RETURNING id`), g.AccountID, g.Name, g.Comments, ms(now), ms(now)).Scan(&g.ID))
	})
}

// RAMGroupGet returns the account's group by name.
func (s *DB) RAMGroupGet(ctx context.Context, accountID int64, name string) (store.RAMGroup, error) {
	g, err := scanGroup(s.db.QueryRowContext(ctx, s.q(`SELECT `+groupColumns+` FROM ram_groups g WHERE g.account_id = ? AND g.name = ?`), accountID, name))
	return g, s.wrap(err)
}

// RAMGroupDelete deletes a group without members or attachments.
func (s *DB) RAMGroupDelete(ctx context.Context, accountID, id int64) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT (SELECT COUNT(*) FROM ram_group_members WHERE group_id = ?)
			+ (SELECT COUNT(*) FROM ram_attachments WHERE account_id = ? AND principal_type = 'Group' AND principal_id = ?)`), id, accountID, id).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n > 0 {
			return store.ErrInUse
		}
		n64, err := s.exec(ctx, tx, `DELETE FROM ram_groups WHERE account_id = ? AND id = ?`, accountID, id)
		if err == nil && n64 == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMGroupList pages the account's groups by ID.
func (s *DB) RAMGroupList(ctx context.Context, p store.RAMListParams) ([]store.RAMGroup, error) {
	return s.groups(ctx, `SELECT `+groupColumns+` FROM ram_groups g WHERE g.account_id = ? AND g.id > ? ORDER BY g.id`+limitOffset(p.Limit, 0), false, p.AccountID, p.AfterID)
}

// RAMGroupsForUser returns the groups a user belongs to, with join times.
func (s *DB) RAMGroupsForUser(ctx context.Context, accountID, userID int64) ([]store.RAMGroup, error) {
	return s.groups(ctx, `SELECT `+groupColumns+`, m.joined_ms FROM ram_groups g JOIN ram_group_members m ON m.group_id = g.id
		WHERE g.account_id = ? AND m.user_id = ? ORDER BY g.id`, true, accountID, userID)
}

func (s *DB) groups(ctx context.Context, query string, joined bool, args ...any) ([]store.RAMGroup, error) {
	rows, err := s.db.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMGroup
	for rows.Next() {
		var j int64
		var extra []any
		if joined {
			extra = []any{&j}
		}
		g, err := scanGroup(rows, extra...)
		if err != nil {
			return nil, s.wrap(err)
		}
		g.Joined = fromMS(j)
		out = append(out, g)
	}
	return out, s.wrap(rows.Err())
}

// RAMGroupAddUser adds a user of the account to a group of the account.
func (s *DB) RAMGroupAddUser(ctx context.Context, accountID, groupID, userID int64) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `INSERT INTO ram_group_members (group_id, user_id, joined_ms)
			SELECT g.id, u.id, ? FROM ram_groups g, ram_users u WHERE g.account_id = ? AND g.id = ? AND u.account_id = ? AND u.id = ?`,
			ms(time.Now()), accountID, groupID, accountID, userID)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMGroupRemoveUser removes a user from a group; ErrNotFound if not a member.
func (s *DB) RAMGroupRemoveUser(ctx context.Context, accountID, groupID, userID int64) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM ram_group_members WHERE group_id = ? AND user_id = ?
			AND EXISTS (SELECT 1 FROM ram_groups g WHERE g.id = ? AND g.account_id = ?)`, groupID, userID, groupID, accountID)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

const policyColumns = `p.id, p.account_id, p.name, p.description, p.default_version, v.document, p.created_ms, p.updated_ms`
const policyFrom = ` FROM ram_policies p JOIN ram_policy_versions v ON v.policy_id = p.id AND v.version_id = p.default_version`

func scanPolicy(sc interface{ Scan(...any) error }) (store.RAMPolicy, error) {
	var p store.RAMPolicy
	var c, m int64
	err := sc.Scan(&p.ID, &p.AccountID, &p.Name, &p.Description, &p.DefaultVersion, &p.DefaultDocument, &c, &m)
	p.Created, p.Updated = fromMS(c), fromMS(m)
	return p, err
}

// RAMPolicyCreate inserts a custom policy and its version v1.
func (s *DB) RAMPolicyCreate(ctx context.Context, p *store.RAMPolicy, document string) error {
	now := time.Now()
	p.Created, p.Updated, p.DefaultVersion, p.DefaultDocument = now, now, "v1", document
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, s.q(`INSERT INTO ram_policies (account_id, name, description, default_version, next_version, created_ms, updated_ms)
			VALUES (?, ?, ?, 'v1', 2, ?, ?) RETURNING id`), p.AccountID, p.Name, p.Description, ms(now), ms(now)).Scan(&p.ID); err != nil {
			return s.wrap(err)
		}
		_, err := s.exec(ctx, tx, `INSERT INTO ram_policy_versions (policy_id, version_id, document, created_ms) VALUES (?, 'v1', ?, ?)`, p.ID, document, ms(now))
		return err
	})
}

// RAMPolicyGet returns a custom policy by name, with its default document.
func (s *DB) RAMPolicyGet(ctx context.Context, accountID int64, name string) (store.RAMPolicy, error) {
	p, err := scanPolicy(s.db.QueryRowContext(ctx, s.q(`SELECT `+policyColumns+policyFrom+` WHERE p.account_id = ? AND p.name = ?`), accountID, name))
	return p, s.wrap(err)
}

// RAMPolicyDelete deletes an unattached custom policy with its versions.
func (s *DB) RAMPolicyDelete(ctx context.Context, accountID, id int64) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM ram_attachments a JOIN ram_policies p ON p.account_id = a.account_id AND p.name = a.policy_name
			WHERE a.account_id = ? AND a.policy_type = 'Custom' AND p.id = ?`), accountID, id).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n > 0 {
			return store.ErrInUse
		}
		if _, err := s.exec(ctx, tx, `DELETE FROM ram_policy_versions WHERE policy_id = ?
			AND EXISTS (SELECT 1 FROM ram_policies p WHERE p.id = ? AND p.account_id = ?)`, id, id, accountID); err != nil {
			return err
		}
		n64, err := s.exec(ctx, tx, `DELETE FROM ram_policies WHERE account_id = ? AND id = ?`, accountID, id)
		if err == nil && n64 == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMPolicyList pages the account's custom policies by ID.
func (s *DB) RAMPolicyList(ctx context.Context, p store.RAMListParams) ([]store.RAMPolicy, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+policyColumns+policyFrom+` WHERE p.account_id = ? AND p.id > ? ORDER BY p.id`+limitOffset(p.Limit, 0)), p.AccountID, p.AfterID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMPolicy
	for rows.Next() {
		pol, err := scanPolicy(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, pol)
	}
	return out, s.wrap(rows.Err())
}

// lockPolicy reads (and on PostgreSQL locks) a policy's version counter and default.
func (s *DB) lockPolicy(ctx context.Context, tx *sql.Tx, accountID, policyID int64) (next int64, def string, err error) {
	lock := ""
	if s.d.Name == "postgres" {
		lock = " FOR UPDATE"
	}
	err = tx.QueryRowContext(ctx, s.q(`SELECT next_version, default_version FROM ram_policies WHERE account_id = ? AND id = ?`+lock), accountID, policyID).Scan(&next, &def)
	return next, def, s.wrap(err)
}

// versionOrder orders versions created in the same millisecond by number
// ("v9" before "v10"), as text alone would not.
const versionOrder = `LENGTH(version_id), version_id`

// RAMPolicyVersionCreate adds a policy's next version.
func (s *DB) RAMPolicyVersionCreate(ctx context.Context, accountID, policyID int64, document string, setDefault, rotate bool, max int) (store.RAMPolicyVersion, error) {
	now := time.Now()
	v := store.RAMPolicyVersion{Document: document, IsDefault: setDefault, Created: now}
	err := s.ramTx(ctx, func(tx *sql.Tx) error {
		next, def, err := s.lockPolicy(ctx, tx, accountID, policyID)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM ram_policy_versions WHERE policy_id = ?`), policyID).Scan(&n); err != nil {
			return s.wrap(err)
		}
		if n >= max {
			if !rotate {
				return store.ErrLimitExceeded
			}
			var oldest string
			if err := tx.QueryRowContext(ctx, s.q(`SELECT version_id FROM ram_policy_versions WHERE policy_id = ? AND version_id <> ?
				ORDER BY created_ms, `+versionOrder+` LIMIT 1`), policyID, def).Scan(&oldest); err != nil {
				return s.wrap(err)
			}
			if _, err := s.exec(ctx, tx, `DELETE FROM ram_policy_versions WHERE policy_id = ? AND version_id = ?`, policyID, oldest); err != nil {
				return err
			}
		}
		v.VersionID = "v" + strconv.FormatInt(next, 10)
		if _, err := s.exec(ctx, tx, `INSERT INTO ram_policy_versions (policy_id, version_id, document, created_ms) VALUES (?, ?, ?, ?)`,
			policyID, v.VersionID, document, ms(now)); err != nil {
			return err
		}
		if setDefault {
			def = v.VersionID
		}
		_, err = s.exec(ctx, tx, `UPDATE ram_policies SET next_version = ?, default_version = ?, updated_ms = ? WHERE id = ?`, next+1, def, ms(now), policyID)
		return err
	})
	return v, err
}

// RAMPolicySetDefault makes an existing version the default.
func (s *DB) RAMPolicySetDefault(ctx context.Context, accountID, policyID int64, versionID string) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		if _, _, err := s.lockPolicy(ctx, tx, accountID, policyID); err != nil {
			return err
		}
		n, err := s.exec(ctx, tx, `UPDATE ram_policies SET default_version = ?, updated_ms = ? WHERE id = ?
			AND EXISTS (SELECT 1 FROM ram_policy_versions WHERE policy_id = ? AND version_id = ?)`, versionID, ms(time.Now()), policyID, policyID, versionID)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMPolicyVersions lists a custom policy's versions, oldest first.
func (s *DB) RAMPolicyVersions(ctx context.Context, accountID, policyID int64) ([]store.RAMPolicyVersion, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT v.version_id, v.document, v.version_id = p.default_version, v.created_ms
		FROM ram_policy_versions v JOIN ram_policies p ON p.id = v.policy_id WHERE p.account_id = ? AND p.id = ? ORDER BY v.created_ms, `+versionOrder), accountID, policyID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMPolicyVersion
	for rows.Next() {
		var v store.RAMPolicyVersion
		var c int64
		if err := rows.Scan(&v.VersionID, &v.Document, &v.IsDefault, &c); err != nil {
			return nil, s.wrap(err)
		}
		v.Created = fromMS(c)
		out = append(out, v)
	}
	return out, s.wrap(rows.Err())
}

// RAMAttach attaches a policy; ErrConflict if already attached.
func (s *DB) RAMAttach(ctx context.Context, a store.RAMAttachment) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		_, err := s.exec(ctx, tx, `INSERT INTO ram_attachments (account_id, principal_type, principal_id, policy_type, policy_name, attached_ms)
			VALUES (?, ?, ?, ?, ?, ?)`, a.AccountID, a.PrincipalType, a.PrincipalID, a.PolicyType, a.PolicyName, ms(time.Now()))
		return err
	})
}

// RAMDetach removes an attachment; ErrNotFound if absent.
func (s *DB) RAMDetach(ctx context.Context, a store.RAMAttachment) error {
	return s.ramTx(ctx, func(tx *sql.Tx) error {
		n, err := s.exec(ctx, tx, `DELETE FROM ram_attachments WHERE account_id = ? AND principal_type = ? AND principal_id = ? AND policy_type = ? AND policy_name = ?`,
			a.AccountID, a.PrincipalType, a.PrincipalID, a.PolicyType, a.PolicyName)
		if err == nil && n == 0 {
			return store.ErrNotFound
		}
		return err
	})
}

// RAMAttachments lists what is attached to one principal.
func (s *DB) RAMAttachments(ctx context.Context, accountID int64, principalType string, principalID int64) ([]store.RAMAttachment, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT account_id, principal_type, principal_id, policy_type, policy_name, attached_ms FROM ram_attachments
		WHERE account_id = ? AND principal_type = ? AND principal_id = ? ORDER BY attached_ms, policy_name`), accountID, principalType, principalID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMAttachment
	for rows.Next() {
		var a store.RAMAttachment
		var t int64
		if err := rows.Scan(&a.AccountID, &a.PrincipalType, &a.PrincipalID, &a.PolicyType, &a.PolicyName, &t); err != nil {
			return nil, s.wrap(err)
		}
		a.Attached = fromMS(t)
		out = append(out, a)
	}
	return out, s.wrap(rows.Err())
}

// RAMAttachmentCount counts the principals a policy is attached to.
func (s *DB) RAMAttachmentCount(ctx context.Context, accountID int64, policyType, policyName string) (int64, error) {
	var n int64
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM ram_attachments WHERE account_id = ? AND policy_type = ? AND policy_name = ?`),
		accountID, policyType, policyName).Scan(&n)
	return n, s.wrap(err)
}

// RAMGrants returns the policies that apply to a user, directly or through groups.
func (s *DB) RAMGrants(ctx context.Context, accountID, userID int64) ([]store.RAMGrant, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT a.policy_type, a.policy_name, COALESCE(v.document, '') FROM ram_attachments a
		LEFT JOIN ram_policies p ON a.policy_type = 'Custom' AND p.account_id = a.account_id AND p.name = a.policy_name
		LEFT JOIN ram_policy_versions v ON v.policy_id = p.id AND v.version_id = p.default_version
		WHERE a.account_id = ? AND ((a.principal_type = 'User' AND a.principal_id = ?)
			OR (a.principal_type = 'Group' AND a.principal_id IN (SELECT group_id FROM ram_group_members WHERE user_id = ?)))`), accountID, userID, userID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.RAMGrant
	for rows.Next() {
		var g store.RAMGrant
		if err := rows.Scan(&g.PolicyType, &g.PolicyName, &g.Document); err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, g)
	}
	return out, s.wrap(rows.Err())
}

// RAMGeneration returns the RAM change counter.
func (s *DB) RAMGeneration(ctx context.Context) (int64, error) {
	var g int64
	err := s.db.QueryRowContext(ctx, `SELECT gen FROM ram_generation WHERE id = 1`).Scan(&g)
	return g, s.wrap(err)
}

// AuditAppend appends events to the chain in one transaction, serialised
// with every other append by the head row: one commit for the lot (group
// commit, internal/api/auditlog.go), not one per event.
func (s *DB) AuditAppend(ctx context.Context, es []*store.AuditEvent, seal func(e *store.AuditEvent) string) error {
	if len(es) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if s.d.Name == "postgres" {
			lock = " FOR UPDATE" // one chain: concurrent appends queue on the head row
		}
		var prev string
		if err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_head WHERE id = 1`+lock).Scan(&prev); err != nil {
			return fmt.Errorf("store: audit head: %w", s.wrap(err))
		}
		for _, e := range es {
			e.PrevHash = prev
			e.Hash = seal(e)
			prev = e.Hash
		}
		// One INSERT per power-of-two run of events (13 = 8 + 4 + 1), in
		// chain order: a few statement texts, each prepared once per
		// connection, whatever the batch's size.
		for rest := es; len(rest) > 0; {
			n := 1 << (bits.Len(uint(len(rest))) - 1)
			if err := s.auditInsert(ctx, tx, rest[:n]); err != nil {
				return err
			}
			rest = rest[n:]
		}
		// The chain is read in ID order (AuditScan): the IDs, drawn under
		// the head's lock in the rows' order, must follow the chain.
		for i, e := range es {
			if e.ID == 0 || (i > 0 && e.ID <= es[i-1].ID) {
				return fmt.Errorf("store: audit event %d of %d got no ID or one out of chain order", i+1, len(es))
			}
		}
		_, err := s.exec(ctx, tx, `UPDATE audit_head SET last_id = ?, hash = ? WHERE id = 1`, es[len(es)-1].ID, prev)
		return err
	})
}

// auditInsert inserts sealed events with one statement and sets their IDs.
func (s *DB) auditInsert(ctx context.Context, tx *sql.Tx, es []*store.AuditEvent) error {
	const tuple = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	args := make([]any, 0, 11*len(es))
	byHash := make(map[string]*store.AuditEvent, len(es))
	for _, e := range es {
		byHash[e.Hash] = e
		args = append(args, ms(e.Time), e.AccountID, e.Principal, e.AccessKeyID, e.SourceIP, e.Action, e.Params,
			e.Code, e.RequestID, e.PrevHash, e.Hash)
	}
	rows, err := tx.QueryContext(ctx, s.q(`INSERT INTO audit_events (time_ms, account_id, principal, access_key_id, source_ip, action, params, code, request_id, prev_hash, hash)
		VALUES `+strings.Repeat(tuple+`, `, len(es)-1)+tuple+` RETURNING id, hash`), args...)
	if err != nil {
		return s.wrap(err)
	}
	defer rows.Close()
	for rows.Next() { // matched by hash, not by the order RETURNING gives
		var id int64
		var h string
		if err := rows.Scan(&id, &h); err != nil {
			return s.wrap(err)
		}
		if e := byHash[h]; e != nil {
			e.ID = id
		}
	}
	return s.wrap(rows.Err())
}

const auditColumns = `id, time_ms, account_id, principal, access_key_id, source_ip, action, params, code, request_id, prev_hash, hash`

func scanAudit(sc interface{ Scan(...any) error }) (store.AuditEvent, error) {
	var e store.AuditEvent
	var t int64
	err := sc.Scan(&e.ID, &t, &e.AccountID, &e.Principal, &e.AccessKeyID, &e.SourceIP, &e.Action, &e.Params, &e.Code, &e.RequestID, &e.PrevHash, &e.Hash)
	e.Time = fromMS(t)
	return e, err
}

// AuditList returns an account's events, newest first.
func (s *DB) AuditList(ctx context.Context, p store.AuditListParams) ([]store.AuditEvent, int64, error) {
	where, args := ` WHERE account_id = ?`, []any{p.AccountID}
	if p.Action != "" {
		where += ` AND action = ?`
		args = append(args, p.Action)
	}
	if p.Principal != "" {
		where += ` AND principal = ?`
		args = append(args, p.Principal)
	}
	if !p.Start.IsZero() {
		where += ` AND time_ms >= ?`
		args = append(args, ms(p.Start))
	}
	if !p.End.IsZero() {
		where += ` AND time_ms <= ?`
		args = append(args, ms(p.End))
	}
	return list(ctx, s, `audit_events`, auditColumns, where, ` ORDER BY id DESC`, args, p.Limit, p.Offset, scanAudit)
}

// AuditScan returns events after afterID, oldest first.
func (s *DB) AuditScan(ctx context.Context, afterID int64, limit int) ([]store.AuditEvent, error) {
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+auditColumns+` FROM audit_events WHERE id > ? ORDER BY id`+limitOffset(limit, 0)), afterID)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, s.wrap(err)
		}
		out = append(out, e)
	}
	return out, s.wrap(rows.Err())
}

// AuditHead returns the chain head.
func (s *DB) AuditHead(ctx context.Context) (int64, string, error) {
	var id int64
	var h string
	err := s.db.QueryRowContext(ctx, `SELECT last_id, hash FROM audit_head WHERE id = 1`).Scan(&id, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", nil
	}
	return id, h, s.wrap(err)
}
