-- Every claim and every outcome rewrites a worker's row and, its status
-- changing, adds an entry to each of the row's indexes (issue 14). No
-- statement reads workers by (status, next_run_ms) any more: claims walk
-- workers_runnable (0007), the rest start from a job, a worker or a
-- resource, and the metrics' counts by status read every row either way.
DROP INDEX workers_due;
