-- What each resource's VerifyAddress served when last probed: one row per
-- resource, replaced by every probe.
CREATE TABLE resource_observations (
    resource_id  BIGINT  PRIMARY KEY REFERENCES resources(id) ON DELETE CASCADE,
    account_id   BIGINT  NOT NULL,
    sha2         TEXT    NOT NULL,
    subject      TEXT    NOT NULL,
    not_after_ms BIGINT  NOT NULL,
    observed_ms  BIGINT  NOT NULL,
    error        TEXT    NOT NULL
);
CREATE INDEX resource_observations_account ON resource_observations(account_id, resource_id);
