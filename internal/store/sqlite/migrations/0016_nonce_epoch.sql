-- Signature nonces checked in memory and written behind the answer (issue 14,
-- internal/store/sqlstore/localnonces.go). SQLite.
-- signed_ms: the signing time the request claimed (NULL: unknown, or written
-- before this migration); a restart reloads the nonces signed after the epoch.
ALTER TABLE nonces ADD COLUMN signed_ms INTEGER;
CREATE INDEX nonces_signed ON nonces(signed_ms);
-- One row: the lease (epoch ms) below which every nonce answered from memory
-- was signed, and whether the last run wrote all its nonces before it ended.
CREATE TABLE nonce_epoch (
    id       INTEGER PRIMARY KEY CHECK (id = 1),
    lease_ms INTEGER NOT NULL,
    clean    INTEGER NOT NULL
);
