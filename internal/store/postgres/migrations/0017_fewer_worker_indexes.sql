-- Every claim and every outcome rewrites a worker's row and, its status
-- changing, adds an entry to each of the row's indexes (issue 14). No
-- statement reads workers by (status, next_run_ms) any more: claims walk
-- workers_runnable (0007), everything else starts from a job or a worker.
DROP INDEX workers_due;
