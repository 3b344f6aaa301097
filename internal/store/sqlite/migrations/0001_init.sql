-- certfleet schema, SQLite. Times are epoch milliseconds; lists are JSON text.
CREATE TABLE accounts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT    NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL
);

CREATE TABLE access_keys (
    id         TEXT    PRIMARY KEY,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    secret_enc BLOB    NOT NULL,
    status     TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE nonces (
    nonce      TEXT    PRIMARY KEY,
    expires_ms INTEGER NOT NULL
);
CREATE INDEX nonces_expires ON nonces(expires_ms);

CREATE TABLE certificates (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id    INTEGER NOT NULL REFERENCES accounts(id),
    name          TEXT    NOT NULL,
    cert_pem      TEXT    NOT NULL,
    key_enc       BLOB    NOT NULL,
    common_name   TEXT    NOT NULL,
    sans          TEXT    NOT NULL,
    issuer        TEXT    NOT NULL,
    org_name      TEXT    NOT NULL,
    country       TEXT    NOT NULL,
    province      TEXT    NOT NULL,
    city          TEXT    NOT NULL,
    fingerprint   TEXT    NOT NULL,
    sha2          TEXT    NOT NULL,
    serial_no     TEXT    NOT NULL,
    algorithm     TEXT    NOT NULL,
    not_before_ms INTEGER NOT NULL,
    not_after_ms  INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL,
    UNIQUE (account_id, name)
);

CREATE TABLE cloud_access (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    cloud_name     TEXT    NOT NULL,
    name           TEXT    NOT NULL,
    secret_id      TEXT    NOT NULL,
    secret_key_enc BLOB    NOT NULL,
    config         TEXT    NOT NULL,
    created_ms     INTEGER NOT NULL
);

CREATE TABLE resources (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    cloud_name      TEXT    NOT NULL,
    cloud_product   TEXT    NOT NULL,
    domain          TEXT    NOT NULL,
    cloud_access_id INTEGER NOT NULL,
    name            TEXT    NOT NULL,
    region_id       TEXT    NOT NULL,
    instance_id     TEXT    NOT NULL,
    listener_port   TEXT    NOT NULL,
    config          TEXT    NOT NULL,
    current_cert_id INTEGER NOT NULL DEFAULT 0,
    created_ms      INTEGER NOT NULL,
    modified_ms     INTEGER NOT NULL
);
CREATE INDEX resources_account ON resources(account_id, id);

CREATE TABLE contacts (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id INTEGER NOT NULL REFERENCES accounts(id),
    name       TEXT    NOT NULL,
    email      TEXT    NOT NULL,
    mobile     TEXT    NOT NULL,
    webhooks   TEXT    NOT NULL,
    created_ms INTEGER NOT NULL
);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    name         TEXT    NOT NULL,
    job_type     TEXT    NOT NULL,
    status       TEXT    NOT NULL,
    schedule_ms  INTEGER NOT NULL DEFAULT 0,
    start_ms     INTEGER NOT NULL DEFAULT 0,
    end_ms       INTEGER NOT NULL DEFAULT 0,
    rollback     INTEGER NOT NULL DEFAULT 0,
    cert_ids     TEXT    NOT NULL,
    resource_ids TEXT    NOT NULL,
    contact_ids  TEXT    NOT NULL,
    config       TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL,
    modified_ms  INTEGER NOT NULL
);
CREATE INDEX jobs_account ON jobs(account_id, id);
CREATE INDEX jobs_due ON jobs(status, schedule_ms);

-- What each job references, so deletes can answer InUse.
CREATE TABLE job_refs (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    kind   TEXT    NOT NULL,
    ref_id INTEGER NOT NULL,
    PRIMARY KEY (job_id, kind, ref_id)
);
CREATE INDEX job_refs_ref ON job_refs(kind, ref_id);

CREATE TABLE workers (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id       INTEGER NOT NULL,
    job_id           INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    resource_id      INTEGER NOT NULL,
    cert_id          INTEGER NOT NULL,
    cloud_name       TEXT    NOT NULL,
    cloud_product    TEXT    NOT NULL,
    status           TEXT    NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_run_ms      INTEGER NOT NULL DEFAULT 0,
    lease_owner      TEXT    NOT NULL DEFAULT '',
    lease_token      INTEGER NOT NULL DEFAULT 0,
    lease_expires_ms INTEGER NOT NULL DEFAULT 0,
    active           INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT    NOT NULL DEFAULT '',
    resource_cert_id INTEGER NOT NULL DEFAULT 0,
    previous_enc     BLOB,
    has_previous     INTEGER NOT NULL DEFAULT 0,
    created_ms       INTEGER NOT NULL,
    modified_ms      INTEGER NOT NULL
);
CREATE INDEX workers_job ON workers(job_id, status);
CREATE INDEX workers_due ON workers(status, next_run_ms);
-- At most one worker per resource holds it at a time (leased or crashed mid-deploy).
CREATE UNIQUE INDEX workers_one_active ON workers(resource_id) WHERE active = 1;
