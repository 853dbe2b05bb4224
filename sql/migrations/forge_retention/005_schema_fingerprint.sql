-- Every archived file's schema in the ledger: its columns (name, Arrow type, PostgreSQL type, in file order)
-- and a fingerprint of them, so that a schema change between days is visible without opening the files.
-- Rows written before this migration have NULLs (their files still carry the types as field metadata).
ALTER TABLE forge_retention.archive_ledger
    ADD COLUMN schema_fingerprint text,
    ADD COLUMN file_schema        jsonb;
