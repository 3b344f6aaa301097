-- Accounts' RAM users, groups and policies, and the hash-chained audit trail (issue 8). SQLite.
-- Keys of RAM users carry their user; root keys keep user_id 0.
ALTER TABLE access_keys ADD COLUMN user_id INTEGER NOT NULL DEFAULT 0;
CREATE INDEX access_keys_user ON access_keys(account_id, user_id);

CREATE TABLE ram_users (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    name         TEXT    NOT NULL,
    display_name TEXT    NOT NULL,
    email        TEXT    NOT NULL,
    mobile       TEXT    NOT NULL,
    comments     TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    updated_ms   INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE ram_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT    NOT NULL,
    comments   TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE ram_group_members (
    group_id  INTEGER NOT NULL REFERENCES ram_groups(id) ON DELETE CASCADE,
    user_id   INTEGER NOT NULL REFERENCES ram_users(id) ON DELETE CASCADE,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX ram_group_members_user ON ram_group_members(user_id);

-- Custom policies only; System policies are defined in code and exist in every account.
CREATE TABLE ram_policies (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    name            TEXT    NOT NULL,
    description     TEXT    NOT NULL,
    default_version TEXT    NOT NULL,
    next_version    INTEGER NOT NULL,
    created_ms      INTEGER NOT NULL,
    updated_ms      INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE ram_policy_versions (
    policy_id  INTEGER NOT NULL REFERENCES ram_policies(id) ON DELETE CASCADE,
    version_id TEXT    NOT NULL,
    document   TEXT    NOT NULL,
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (policy_id, version_id)
);

-- principal_type User | Group; policy_type System | Custom.
CREATE TABLE ram_attachments (
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    principal_type TEXT    NOT NULL,
    principal_id   INTEGER NOT NULL,
    policy_type    TEXT    NOT NULL,
    policy_name    TEXT    NOT NULL,
    attached_ms    INTEGER NOT NULL,
    PRIMARY KEY (account_id, principal_type, principal_id, policy_type, policy_name)
);
CREATE INDEX ram_attachments_policy ON ram_attachments(account_id, policy_type, policy_name);

-- Bumped by every RAM change; nodes poll it to drop cached authorizations.
CREATE TABLE ram_generation (
    id  INTEGER PRIMARY KEY,
    gen INTEGER NOT NULL
);
INSERT INTO ram_generation (id, gen) VALUES (1, 0);

-- Append-only audit trail: hash = SHA-256(prev_hash || canonical row).
CREATE TABLE audit_events (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ms       INTEGER NOT NULL,
    account_id    INTEGER NOT NULL,
    principal     TEXT    NOT NULL,
    access_key_id TEXT    NOT NULL,
    source_ip     TEXT    NOT NULL,
    action        TEXT    NOT NULL,
    params        TEXT    NOT NULL,
    code          TEXT    NOT NULL,
    request_id    TEXT    NOT NULL,
    prev_hash     TEXT    NOT NULL,
    hash          TEXT    NOT NULL
);
CREATE INDEX audit_events_account ON audit_events(account_id, time_ms);

-- The chain head: the last row's id and hash. Appends lock this row.
CREATE TABLE audit_head (
    id      INTEGER PRIMARY KEY,
    last_id INTEGER NOT NULL,
    hash    TEXT    NOT NULL
);
INSERT INTO audit_head (id, last_id, hash) VALUES (1, 0, '');
