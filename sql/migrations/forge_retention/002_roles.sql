-- Least-privilege group roles. Roles are cluster-wide and this file runs once per source database, so each
-- role is created only when missing (a concurrent migration of another database may create it first).
-- NOLOGIN: a deployment creates its own login roles IN ROLE forge_reader / forge_retention, with passwords
-- kept in its secret store. Grants on source tables come from the catalog (forge_assets/roles.py).
DO $$
DECLARE
    name text;
BEGIN
    FOREACH name IN ARRAY ARRAY['forge_reader', 'forge_retention'] LOOP
        IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- created meanwhile by a migration of another database
            END;
        END IF;
    END LOOP;
END $$;

GRANT USAGE ON SCHEMA forge_retention TO forge_reader, forge_retention;
-- Archive-integrity checks read the ledger.
GRANT SELECT ON forge_retention.archive_ledger TO forge_reader;
-- The purge writes its ledger rows and retires those of restored days; it never changes the schema.
GRANT SELECT, INSERT, DELETE ON forge_retention.archive_ledger TO forge_retention;
GRANT USAGE ON SEQUENCE forge_retention.archive_ledger_id_seq TO forge_retention;
