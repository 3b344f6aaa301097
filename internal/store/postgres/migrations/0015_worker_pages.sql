-- Paging a large job's workers (ListWorkerResource, the end-of-job report; docs/benchmarks.md, E8). PostgreSQL.
-- Rows of one job in ID order: WorkerPage's count with lowest and highest ID can be an index-only
-- scan, and a page seeks to its first ID. Its columns never change, so a worker's update stays a
-- HOT update where it was one.
CREATE INDEX workers_job_page ON workers(job_id, account_id, id);
