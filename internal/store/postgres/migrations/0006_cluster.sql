-- Leadership of the periodic duties among nodes sharing the database
-- (internal/cluster): one row per leadership, taken and renewed with a
-- conditional upsert. expires_ms is the database's clock (epoch ms).
CREATE TABLE leader (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_ms BIGINT NOT NULL,
    term       BIGINT NOT NULL
);
