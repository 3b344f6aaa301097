-- What resources own exclusively across every account, such as the files a
-- local/FILE resource writes ("local:" and the resolved absolute path). The
-- primary key makes a second claim fail in the transaction that writes the
-- resource; deleting the resource releases its claims.
CREATE TABLE resource_claims (
    claim       TEXT   PRIMARY KEY,
    resource_id BIGINT NOT NULL REFERENCES resources(id) ON DELETE CASCADE
);
CREATE INDEX resource_claims_resource ON resource_claims(resource_id);
