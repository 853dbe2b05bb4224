"""Migrations: applied in order, once, each in its own transaction, and guarded by checksums."""

import shutil

import pytest

from forge_assets.config import SOURCES
from forge_assets.migrate import OWN_SCHEMA, MigrationError, discover, migrate
from forge_assets.sql_files import sql_root


def _copy_migrations(tmp_path, schema):
    root = tmp_path / "migrations"
    shutil.copytree(sql_root() / "migrations" / schema, root / schema)
    return root


def test_second_run_is_a_no_op(settings, connect):
    for source in SOURCES:
        with connect(source, autocommit=True) as conn:
            assert migrate(conn, [source, OWN_SCHEMA]) == []
            recorded = conn.execute(
                "SELECT count(*) FROM forge_retention.schema_migrations WHERE schema_name = %s", (source,)
            ).fetchone()[0]
            assert recorded == len(discover(source)) > 0


def test_changed_applied_file_stops_with_a_clear_error(scratch_settings, connect, tmp_path):
    root = _copy_migrations(tmp_path, "goforge")
    with connect("goforge", scratch_settings, autocommit=True) as conn:
        assert len(migrate(conn, ["goforge"], root)) == 2
        edited = root / "goforge" / "002_add_custom_domain_to_projects.sql"
        edited.write_text(edited.read_text() + "\n-- an innocent-looking edit\n")
        (root / "goforge" / "003_more.sql").write_text("CREATE TABLE must_not_exist (id int);")
        with pytest.raises(MigrationError, match="002_add_custom_domain_to_projects.sql changed after it was applied"):
            migrate(conn, ["goforge"], root)
        assert conn.execute("SELECT to_regclass('must_not_exist')").fetchone()[0] is None


def test_removed_applied_file_is_reported(scratch_settings, connect, tmp_path):
    root = _copy_migrations(tmp_path, "goforge")
    with connect("goforge", scratch_settings, autocommit=True) as conn:
        migrate(conn, ["goforge"], root)
        (root / "goforge" / "002_add_custom_domain_to_projects.sql").unlink()
        with pytest.raises(MigrationError, match="002_add_custom_domain_to_projects.sql was applied .* missing"):
            migrate(conn, ["goforge"], root)


def test_failing_file_rolls_back_and_is_not_recorded(scratch_settings, connect, tmp_path):
    root = tmp_path / "migrations"
    (root / "demo").mkdir(parents=True)
    (root / "demo" / "001_good.sql").write_text("CREATE TABLE good (id int);")
    (root / "demo" / "002_bad.sql").write_text("CREATE TABLE half (id int);\nSELECT no_such_function();")
    with connect("forge", scratch_settings, autocommit=True) as conn:
        with pytest.raises(MigrationError, match="demo/002_bad.sql failed and was rolled back"):
            migrate(conn, ["demo"], root)
        assert conn.execute("SELECT to_regclass('good') IS NOT NULL, to_regclass('half') IS NULL").fetchone() == (True, True)
        versions = conn.execute(
            "SELECT version FROM forge_retention.schema_migrations WHERE schema_name = 'demo'"
        ).fetchall()
        assert versions == [(1,)]


def test_badly_named_files_are_rejected(tmp_path):
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "1_short.sql").write_text("SELECT 1;")
    with pytest.raises(MigrationError, match="NNN_lower_case_name.sql"):
        discover("demo", tmp_path)


def test_forge_seed_diagnostic_queries_run_verbatim(seeded, connect):
    """The stand-in answers the Forge seed's own diagnostic SQL unchanged."""
    queries = [
        "SELECT (SELECT count(*) FROM main_organization) AS organizations, (SELECT count(*) FROM auth_user) AS users,"
        " (SELECT count(*) FROM main_host) AS hosts, (SELECT count(*) FROM main_jobtemplate) AS templates,"
        " (SELECT count(*) FROM main_job) AS jobs;",
        "SELECT status, count(*) FROM main_job WHERE created > NOW() - INTERVAL '7 days'"
        " GROUP BY status ORDER BY count(*) DESC;",
        "SELECT jt.name, count(j.id) AS runs, round(avg(j.elapsed)::numeric, 1) AS avg_sec FROM main_job j"
        " JOIN main_jobtemplate jt ON j.job_template_id = jt.id"
        " WHERE j.status = 'successful' AND j.created > NOW() - INTERVAL '30 days'"
        " GROUP BY jt.name ORDER BY avg_sec DESC;",
        "SELECT h.name, i.name AS inventory FROM main_host h JOIN main_inventory i ON h.inventory_id = i.id"
        " WHERE h.has_active_failures = true;",
    ]
    with connect("forge") as conn:
        results = [conn.execute(q).fetchall() for q in queries]
    assert all(results)
    overview = results[0][0]
    assert overview[4] > 0 and overview[2] > 0
