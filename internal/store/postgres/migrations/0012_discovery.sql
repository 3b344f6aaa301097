-- Discovery (issue 13, SyncCloudResources). PostgreSQL.
-- listener_id: the provider's listener name ("lsn-…@443") where it has one.
-- discovery_key: for resources a sync created, the provider's identity of
-- the resource (deploy.Discovered.Key), unique per account, credential and
-- product; '' for resources created by hand. status: 'online', or 'gone'
-- once a sync no longer finds a discovered resource. default_resource,
-- enable_https, bound_sha2 and bound_not_after_ms are what the provider
-- reported at the last sync (the listener's default certificate, HTTPS on,
-- the fingerprint and expiry of the certificate bound).
ALTER TABLE resources ADD COLUMN listener_id TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN discovery_key TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN status TEXT NOT NULL DEFAULT 'online';
ALTER TABLE resources ADD COLUMN default_resource INTEGER NOT NULL DEFAULT 0;
ALTER TABLE resources ADD COLUMN enable_https INTEGER NOT NULL DEFAULT 1;
ALTER TABLE resources ADD COLUMN bound_sha2 TEXT NOT NULL DEFAULT '';
ALTER TABLE resources ADD COLUMN bound_not_after_ms BIGINT NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX resources_discovered ON resources(account_id, cloud_access_id, cloud_product, discovery_key)
    WHERE discovery_key <> '';
CREATE INDEX certificates_sha2 ON certificates(account_id, sha2);
