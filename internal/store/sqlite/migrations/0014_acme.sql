-- Issuing certificates over ACME (issue 20). SQLite.
-- An account's ACME certificate authorities, named by ProductCode.
CREATE TABLE acme_issuers (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      INTEGER NOT NULL REFERENCES accounts(id),
    product_code    TEXT    NOT NULL,
    directory_url   TEXT    NOT NULL,
    email           TEXT    NOT NULL,
    eab_key_id      TEXT    NOT NULL,
    eab_hmac_enc    BLOB,
    key_type        TEXT    NOT NULL,
    preferred_chain TEXT    NOT NULL,
    trusted_ca      TEXT    NOT NULL,
    account_key_enc BLOB,
    account_url     TEXT    NOT NULL DEFAULT '',
    created_ms      INTEGER NOT NULL,
    UNIQUE (account_id, product_code)
);
-- Orders: the background driver works on those in progress (next_run_ms);
-- order_url is the CA's order, kept before anything else happens to it so a
-- restart resumes it instead of ordering again. version fences writes.
CREATE TABLE acme_orders (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id     INTEGER NOT NULL REFERENCES accounts(id),
    issuer_id      INTEGER NOT NULL,
    product_code   TEXT    NOT NULL,
    domains        TEXT    NOT NULL,
    validate_type  TEXT    NOT NULL,
    manual         INTEGER NOT NULL,
    csr_pem        TEXT    NOT NULL,
    key_enc        BLOB,
    csr_id         INTEGER NOT NULL,
    contact        TEXT    NOT NULL,
    status         TEXT    NOT NULL,
    order_url      TEXT    NOT NULL,
    challenges     TEXT    NOT NULL,
    message        TEXT    NOT NULL,
    cert_id        INTEGER NOT NULL,
    cert_pem       TEXT    NOT NULL,
    renew_of       INTEGER NOT NULL,
    renew_at_ms    INTEGER NOT NULL,
    renewal_id     INTEGER NOT NULL,
    renew_attempts INTEGER NOT NULL,
    next_run_ms    INTEGER NOT NULL,
    attempts       INTEGER NOT NULL,
    acme_requests  INTEGER NOT NULL,
    version        INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL,
    modified_ms    INTEGER NOT NULL
);
CREATE INDEX acme_orders_due ON acme_orders(status, next_run_ms);
CREATE INDEX acme_orders_cert ON acme_orders(account_id, cert_id);
-- http-01 answers, served by --acme-http-addr on any node.
CREATE TABLE acme_tokens (
    token    TEXT    PRIMARY KEY,
    order_id INTEGER NOT NULL,
    key_auth TEXT    NOT NULL
);
CREATE INDEX acme_tokens_order ON acme_tokens(order_id);
CREATE TABLE csrs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id   INTEGER NOT NULL REFERENCES accounts(id),
    name         TEXT    NOT NULL,
    csr_pem      TEXT    NOT NULL,
    key_enc      BLOB,
    common_name  TEXT    NOT NULL,
    sans         TEXT    NOT NULL,
    algorithm    TEXT    NOT NULL,
    key_size     INTEGER NOT NULL,
    key_sha2     TEXT    NOT NULL,
    corp_name    TEXT    NOT NULL,
    country_code TEXT    NOT NULL,
    department   TEXT    NOT NULL,
    locality     TEXT    NOT NULL,
    province     TEXT    NOT NULL,
    created_ms   INTEGER NOT NULL
);
CREATE INDEX csrs_account ON csrs(account_id, id);
