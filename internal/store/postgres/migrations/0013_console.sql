-- The web console (issue 15). PostgreSQL.
-- login_profiles: console passwords (Argon2id PHC strings) of an account's
-- root (user_id 0) and of RAM users (the RAM API's login profiles).
CREATE TABLE login_profiles (
    account_id      BIGINT NOT NULL REFERENCES accounts(id),
    user_id         BIGINT NOT NULL,
    password_hash   TEXT    NOT NULL,
    reset_required  INTEGER NOT NULL DEFAULT 0,
    mfa_required    INTEGER NOT NULL DEFAULT 0,
    totp_secret_enc BYTEA,
    created_ms      BIGINT NOT NULL,
    updated_ms      BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_id)
);
-- console_sessions: signed-in browsers; id_hash is the SHA-256 of the
-- cookie's token (the token itself is never stored).
CREATE TABLE console_sessions (
    id_hash      TEXT    PRIMARY KEY,
    account_id   BIGINT NOT NULL REFERENCES accounts(id),
    user_id      BIGINT NOT NULL,
    csrf         TEXT    NOT NULL,
    source       TEXT    NOT NULL,
    created_ms   BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);
CREATE INDEX console_sessions_user ON console_sessions (account_id, user_id);
