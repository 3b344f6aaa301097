-- Staged rollouts (issue 5, waves). PostgreSQL.
-- A job's Strategy (normalised JSON, '' = none: one wave, as before), the
-- wave being run (0-based), the last wave, when the current wave's bake
-- ends (0 = not baking), the wave that halted it (1-based, 0 = none) and
-- whether the halt was told.
ALTER TABLE jobs ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
ALTER TABLE jobs ADD COLUMN current_wave BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN last_wave BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN bake_until_ms BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN halted_wave BIGINT  NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN halt_notified BIGINT  NOT NULL DEFAULT 0;
-- A worker runs once its job's current_wave reaches its wave.
ALTER TABLE workers ADD COLUMN wave BIGINT  NOT NULL DEFAULT 0;
CREATE INDEX workers_job_wave ON workers(job_id, wave, status);
CREATE INDEX jobs_baking ON jobs(status, bake_until_ms);
