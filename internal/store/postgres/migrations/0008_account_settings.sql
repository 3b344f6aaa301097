-- Per-account confinement: where the account's targets may connect
-- (egress_allow, a JSON list of CIDRs and host names beyond the server-wide
-- policy) and the subdirectory of --local-root its local targets write in.
ALTER TABLE accounts ADD COLUMN egress_allow TEXT NOT NULL DEFAULT '[]';
ALTER TABLE accounts ADD COLUMN local_root TEXT NOT NULL DEFAULT '';
