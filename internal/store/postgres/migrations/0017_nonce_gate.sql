-- A signed read's nonce recorded by the read's own statement (issue 14,
-- internal/store/sqlstore/nonces.go, "carried nonces"). PostgreSQL.
-- The gate applies NonceUseMany's two rules to one nonce inside any
-- statement: a nonce signed less than slack_ms after the server's start is
-- refused (SQLSTATE CFN01: it may have been used and lost in a crash), and
-- the statement's transaction commits asynchronously when the nonce was
-- signed at most slack_ms after the database's clock.
CREATE FUNCTION certfleet_nonce_gate(signed_ms BIGINT, slack_ms BIGINT) RETURNS BOOLEAN
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    IF signed_ms < (extract(epoch from pg_postmaster_start_time()) * 1000)::bigint + slack_ms THEN
        RAISE EXCEPTION 'nonce signed before the database server started' USING ERRCODE = 'CFN01';
    END IF;
    IF signed_ms <= (extract(epoch from clock_timestamp()) * 1000)::bigint + slack_ms THEN
        PERFORM set_config('synchronous_commit', 'off', true);
    END IF;
    RETURN true;
END $$;
-- Every signed call inserts a nonce; the purge deletes by expiry. Nonces
-- arrive in about the order they expire, so a block-range index serves the
-- purge at a fraction of a B-tree's cost per insert.
DROP INDEX nonces_expires;
CREATE INDEX nonces_expires ON nonces USING brin (expires_ms);
