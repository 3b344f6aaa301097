package sqlstore

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/certfleet/certfleet/internal/store"
)

// Signature nonces. Every engine keeps the nonces table; what differs is
// when a nonce becomes durable and how a nonce lost in a crash is still
// refused:
//
//   - PostgreSQL (Dialect.RestartedMS set): a batch of nonces is one INSERT
//     committed with synchronous_commit = off. The rows are visible to, and
//     their primary key enforced on, every node the moment the INSERT
//     returns; only a crash of the PostgreSQL server can lose the last
//     fraction of a second of them. The epoch is the server's start time:
//     a nonce signed more than asyncSlack after the database's clock at
//     insert time is committed synchronously instead, and a nonce signed
//     less than asyncSlack after the server started is refused
//     (NonceBeforeEpoch). A nonce lost in a crash was signed at most
//     asyncSlack after its insert, which came before the crash, which came
//     before the new server's start: every replay of it is refused.
//   - SQLite (one node, StartLocalNonces): nonces are checked in memory and
//     written behind the answer (localnonces.go), with a durable lease as
//     the epoch.
//
// docs/decisions.md (issue 14, "Signature nonces") gives the whole argument.

// asyncSlack bounds how far past the database's clock a nonce's signing
// time may be for it to be committed asynchronously on PostgreSQL, and so
// how long after a PostgreSQL start requests are refused: a client whose
// clock runs ahead by more only pays a synchronous commit.
const asyncSlack = 2 * time.Second

// NonceUse records a nonce durably; ErrConflict when it was already used.
func (s *DB) NonceUse(ctx context.Context, nonce string, expires time.Time) error {
	v, err := s.NonceUseMany(ctx, []store.NonceParams{{Nonce: nonce, Expires: expires}})
	if err != nil {
		return err
	}
	if v[0] != store.NonceFresh {
		return store.ErrConflict
	}
	return nil
}

// NonceUseNow answers n from memory when this store keeps nonces there
// (StartLocalNonces) and memory alone decides (store.NonceMemory).
func (s *DB) NonceUseNow(n store.NonceParams) (store.NonceVerdict, bool) {
	if s.local == nil {
		return 0, false
	}
	return s.local.now(n)
}

// NonceUseMany records ns and reports each one's verdict (store.Store).
func (s *DB) NonceUseMany(ctx context.Context, ns []store.NonceParams) ([]store.NonceVerdict, error) {
	if len(ns) == 0 {
		return []store.NonceVerdict{}, nil
	}
	if s.local != nil {
		return s.local.use(ctx, ns)
	}
	if s.d.RestartedMS != "" {
		return s.nonceUseAsync(ctx, ns)
	}
	return s.nonceInsert(ctx, s.db, ns)
}

// NoncePurge deletes nonces that expired before t.
func (s *DB) NoncePurge(ctx context.Context, before time.Time) (int64, error) {
	if s.local != nil {
		s.local.purge(before)
	}
	return s.exec(ctx, s.db, `DELETE FROM nonces WHERE expires_ms < ?`, ms(before))
}

// nonceRows writes the VALUES rows of ns, each nonce once, and returns
// their arguments and where each nonce first appears; a later repeat in ns
// is NonceUsed. cast gives PostgreSQL the columns' types. The rows are
// padded to a power of two by repeating the last one (ON CONFLICT DO
// NOTHING skips the repeats), so that batches of any size use a handful of
// statement texts, which the drivers' per-connection statement caches keep
// prepared instead of parsing a new text for nearly every batch.
func nonceRows(sb *strings.Builder, ns []store.NonceParams, cast bool) (args []any, first map[string]int, v []store.NonceVerdict) {
	row := "(?, ?, ?)"
	if cast {
		row = "(?::text, ?::bigint, ?::bigint)"
	}
	first = make(map[string]int, len(ns))
	v = make([]store.NonceVerdict, len(ns))
	args = make([]any, 0, 3*len(ns))
	for i, n := range ns {
		if _, dup := first[n.Nonce]; dup {
			v[i] = store.NonceUsed
			continue
		}
		first[n.Nonce] = i
		if len(args) > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(row)
		var signed any // NULL: unknown
		if !n.Signed.IsZero() {
			signed = ms(n.Signed)
		}
		args = append(args, n.Nonce, ms(n.Expires), signed)
	}
	last := args[len(args)-3:]
	for rows := len(args) / 3; rows&(rows-1) != 0; rows++ {
		sb.WriteString(", ")
		sb.WriteString(row)
		args = append(args, last...)
	}
	return args, first, v
}

// nonceInsert records ns durably (the connection's own commit) in one
// INSERT … ON CONFLICT DO NOTHING RETURNING: fresh or used.
func (s *DB) nonceInsert(ctx context.Context, x querier, ns []store.NonceParams) ([]store.NonceVerdict, error) {
	var sb strings.Builder
	sb.WriteString(`INSERT INTO nonces (nonce, expires_ms, signed_ms) VALUES `)
	args, first, v := nonceRows(&sb, ns, false)
	sb.WriteString(` ON CONFLICT (nonce) DO NOTHING RETURNING nonce`)
	inserted, err := s.returnedNonces(ctx, x, sb.String(), args)
	if err != nil {
		return nil, err
	}
	for n, i := range first {
		if !inserted[n] {
			v[i] = store.NonceUsed
		}
	}
	return v, nil
}

// nonceUseAsync is PostgreSQL's NonceUseMany: one statement that commits
// asynchronously unless a nonce's signing time is unknown or more than
// asyncSlack ahead of the database's clock, and that does not insert a
// nonce signed less than asyncSlack after the server's start (see the top
// of this file). The CTE c is materialized and joined to every inserted
// row, so its set_config (the transaction's synchronous_commit, this
// statement being its own transaction) has run before any row is written.
func (s *DB) nonceUseAsync(ctx context.Context, ns []store.NonceParams) ([]store.NonceVerdict, error) {
	slack := asyncSlack.Milliseconds()
	var sb strings.Builder
	sb.WriteString(`WITH v (nonce, expires_ms, signed_ms) AS (VALUES `)
	args, first, v := nonceRows(&sb, ns, true)
	sb.WriteString(`),
c AS MATERIALIZED (
    SELECT ` + s.d.RestartedMS + ` + ` + strconv.FormatInt(slack, 10) + ` AS floor_ms,
        set_config('synchronous_commit', CASE
            WHEN EXISTS (SELECT 1 FROM v WHERE v.signed_ms IS NULL OR v.signed_ms > ` + s.d.NowMS + ` + ` + strconv.FormatInt(slack, 10) + `)
            THEN current_setting('synchronous_commit') ELSE 'off' END, true) AS commit_mode)
INSERT INTO nonces (nonce, expires_ms)
SELECT v.nonce, v.expires_ms FROM v CROSS JOIN c
WHERE v.signed_ms IS NULL OR v.signed_ms >= c.floor_ms
ON CONFLICT (nonce) DO NOTHING RETURNING nonce`)
	inserted, err := s.returnedNonces(ctx, s.db, sb.String(), args)
	if err != nil {
		return nil, err
	}
	floor := int64(-1) // read only if some nonce was not inserted
	for n, i := range first {
		if inserted[n] {
			continue
		}
		v[i] = store.NonceUsed
		if ns[i].Signed.IsZero() {
			continue
		}
		if floor < 0 {
			// A replay is rare: asking for the floor again costs a round
			// trip only then. Were the server restarted in between, the
			// verdict is still a refusal, only worded as a replay.
			if err := s.db.QueryRowContext(ctx, `SELECT `+s.d.RestartedMS+` + `+strconv.FormatInt(slack, 10)).Scan(&floor); err != nil {
				return nil, s.wrap(err)
			}
		}
		if ms(ns[i].Signed) < floor {
			v[i] = store.NonceBeforeEpoch
		}
	}
	return v, nil
}

// returnedNonces runs an INSERT … RETURNING nonce and collects the nonces.
func (s *DB) returnedNonces(ctx context.Context, x querier, query string, args []any) (map[string]bool, error) {
	rows, err := x.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, s.wrap(err)
	}
	defer rows.Close()
	inserted := make(map[string]bool, len(args)/3)
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, s.wrap(err)
		}
		inserted[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, s.wrap(err)
	}
	return inserted, nil
}
