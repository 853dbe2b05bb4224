-- Nothing lost, whatever happens around a day (issue 13).
--
-- 1. The ledger's identity: one row, made once per database. Its id names every archive file this ledger
--    writes (`<id prefix>-<run id>.parquet`) and is written into the marker that ties a lake's
--    archive/<source>/ prefix to this ledger; a second deployment pointed at the same prefix is refused.
CREATE TABLE forge_retention.ledger_identity (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    one_row     boolean NOT NULL DEFAULT true UNIQUE CHECK (one_row),
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO forge_retention.ledger_identity DEFAULT VALUES;

-- 2. Content verification per file: the order-independent checksum of every archived column of the file's
--    rows (computed by PostgreSQL under the archiving snapshot and equal to the one computed over the rows
--    read back from the file), and the SHA-256 of the file's bytes.
ALTER TABLE forge_retention.archive_ledger
    ADD COLUMN content_checksum text,
    ADD COLUMN sha256 text;

-- 3. One row per archive run that moved rows: what left PostgreSQL and the table's size before and after
--    (dropped partitions give their space back at COMMIT; deleted rows only after VACUUM).
CREATE TABLE forge_retention.archive_runs (
    id                  bigserial PRIMARY KEY,
    entry               text NOT NULL,
    day                 date NOT NULL,
    run_id              text NOT NULL,
    rows_removed        bigint NOT NULL CHECK (rows_removed >= 0),
    rows_written        bigint NOT NULL CHECK (rows_written >= 0),
    rows_rearchived     bigint NOT NULL DEFAULT 0 CHECK (rows_rearchived >= 0),
    rows_kept_unfinished bigint NOT NULL DEFAULT 0 CHECK (rows_kept_unfinished >= 0),
    table_bytes_before  bigint NOT NULL,
    table_bytes_after   bigint NOT NULL,
    seconds             double precision NOT NULL,
    finished_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX archive_runs_entry_day_idx ON forge_retention.archive_runs (entry, day);

-- A restored file stays ledgered; a later archive of its day makes it "archived" again (restored_at back
-- to NULL) instead of deleting it, so the purge needs UPDATE of that column and no longer DELETE.
GRANT SELECT ON forge_retention.ledger_identity TO forge_reader, forge_retention;
GRANT SELECT ON forge_retention.archive_runs TO forge_reader;
GRANT SELECT, INSERT ON forge_retention.archive_runs TO forge_retention;
GRANT USAGE ON SEQUENCE forge_retention.archive_runs_id_seq TO forge_retention;
GRANT UPDATE (restored_at) ON forge_retention.archive_ledger TO forge_retention;
REVOKE DELETE ON forge_retention.archive_ledger FROM forge_retention;
