-- Faster hot paths (measured in docs/benchmarks.md). PostgreSQL.
-- The products a job deploys to, so describing a job does not scan its workers.
ALTER TABLE jobs ADD COLUMN products TEXT NOT NULL DEFAULT '';
-- Claims walk runnable workers in due order and stop at the limit.
CREATE INDEX workers_runnable ON workers(next_run_ms, id) WHERE status IN ('scheduling', 'processing', 'rollback');
