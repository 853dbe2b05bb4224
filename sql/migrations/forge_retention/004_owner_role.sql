-- The owner group role, for restores: loading archived rows back and marking their ledger rows restored.
-- A deployment's owner login (the application's table owner, or a login granted forge_owner and INSERT on the
-- tables; `forge-assets grants` prints those) restores; created only when missing, like 002's roles.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'forge_owner') THEN
        BEGIN
            CREATE ROLE forge_owner NOLOGIN;
        EXCEPTION WHEN duplicate_object OR unique_violation THEN
            NULL;  -- created meanwhile by a migration of another database
        END;
    END IF;
END $$;

GRANT USAGE ON SCHEMA forge_retention TO forge_owner;
GRANT SELECT, UPDATE ON forge_retention.archive_ledger TO forge_owner;
GRANT SELECT ON forge_retention.ledger_identity TO forge_owner;
