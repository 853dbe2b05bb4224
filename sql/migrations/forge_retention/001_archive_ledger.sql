-- forge_assets' own schema: the archive ledger. A row here is written in the same transaction that
-- deletes the rows it describes, so that every row is either in PostgreSQL or in a ledgered file.
CREATE TABLE forge_retention.archive_ledger (
    id            bigserial PRIMARY KEY,
    entry         text NOT NULL,            -- <source>.<catalog entry>
    day           date NOT NULL,            -- the UTC day of the rows
    run_id        text NOT NULL,
    strategy      text NOT NULL CHECK (strategy IN ('archive', 'drop_partition', 'delete')),
    path          text UNIQUE,              -- the Parquet file, relative to the lake root; NULL for 'delete'
    row_count     bigint NOT NULL CHECK (row_count >= 0),
    bytes         bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    key_checksum  text,                     -- order-independent checksum of the rows' keys
    columns       text[] NOT NULL DEFAULT '{}',
    archived_at   timestamptz NOT NULL DEFAULT now(),
    restored_at   timestamptz               -- set when the file's rows were loaded back
);
CREATE INDEX archive_ledger_entry_day_idx ON forge_retention.archive_ledger (entry, day);
