-- Notifications to contacts: one row per event and recipient channel,
-- delivered and retried by package notify.
CREATE TABLE notifications (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    account_id      BIGINT  NOT NULL,
    job_id          BIGINT  NOT NULL DEFAULT 0,
    cert_id         BIGINT  NOT NULL DEFAULT 0,
    event           TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    target          TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_ms BIGINT  NOT NULL DEFAULT 0,
    claim_token     BIGINT  NOT NULL DEFAULT 0,
    last_error      TEXT    NOT NULL DEFAULT '',
    created_ms      BIGINT  NOT NULL,
    sent_ms         BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX notifications_due ON notifications(status, next_attempt_ms);
CREATE INDEX notifications_account ON notifications(account_id, job_id, id);
-- Expiry thresholds (days) already told per certificate.
CREATE TABLE cert_expiry_notices (
    cert_id        BIGINT  NOT NULL,
    threshold_days BIGINT  NOT NULL,
    created_ms     BIGINT  NOT NULL,
    PRIMARY KEY (cert_id, threshold_days)
);
-- A job's end is told once (notified), and rollbacks that ended after
-- rollback_notified_ms are told once more. Jobs that ended before this
-- migration are not told.
ALTER TABLE jobs ADD COLUMN notified BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN rollback_notified_ms BIGINT NOT NULL DEFAULT 0;
UPDATE jobs SET notified = 1, rollback_notified_ms = modified_ms WHERE status IN ('success', 'error');
CREATE INDEX jobs_notify ON jobs(notified, status);
-- The worker found the resource already serving its certificate.
ALTER TABLE workers ADD COLUMN unchanged BIGINT NOT NULL DEFAULT 0;
