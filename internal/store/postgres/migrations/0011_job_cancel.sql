-- Cancelling a job (issue 17, CancelDeploymentJob). PostgreSQL.
-- When the job was cancelled (0 = never): its workers that had not started
-- ended error "cancelled", and no claim takes its workers again (except
-- rollbacks asked for later). RetryDeploymentJob clears it.
ALTER TABLE jobs ADD COLUMN cancelled_ms BIGINT NOT NULL DEFAULT 0;
