-- Paging a large job's workers (ListWorkerResource, the end-of-job report; docs/benchmarks.md, E8). SQLite.
-- Rows of one job in ID order (the rowid is the last column of every SQLite index): WorkerPage's
-- count with lowest and highest ID reads only this index, and a page seeks to its first ID (or,
-- with OFFSET, skips index entries, not rows). Its columns never change, so a worker's update
-- does not touch it.
CREATE INDEX workers_job_page ON workers(job_id, account_id);
