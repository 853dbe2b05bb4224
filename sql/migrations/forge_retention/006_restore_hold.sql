-- A hold per restore: `forge-assets restore --hold-days N` keeps the restored day out of retention until
-- `held_until` (the sensor requests no run for it and every archive run, CLI or Dagster, leaves it alone); once
-- it has passed the day is archived again like any other. NULL: no hold (a restore with --hold-days 0, or made
-- through the engine without one). Set by the owner login, which restores (UPDATE on the ledger: 004).
ALTER TABLE forge_retention.archive_ledger ADD COLUMN held_until timestamptz;
-- Days restored before this migration were held FORGE_RESTORE_HOLD_DAYS (default 7) after their restore.
UPDATE forge_retention.archive_ledger SET held_until = restored_at + interval '7 days' WHERE restored_at IS NOT NULL;
