"""Configuration: every bad value is one clear error naming its variable; good values resolve as documented."""

import pytest

from forge_assets.config import ConfigError, load_settings
from forge_assets.conninfo import describe, redact
from forge_assets.db import source_conninfo


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"FORGE_PG_URL": "mysql://root@db/forge"}, "FORGE_PG_URL"),
        ({"FORGE_GOFORGE_URL": "not a url"}, "FORGE_GOFORGE_URL"),
        ({"FORGE_GOFORG_URL": "postgresql://x/y"}, "FORGE_GOFORG_URL"),
        ({"FORGE_LAKE_URI": "s3://key:secret@bucket/lake"}, "FORGE_LAKE_URI"),
        ({"FORGE_LAKE_URI": "s3://bucket/lake?endpoint=x"}, "FORGE_LAKE_URI"),
        ({"FORGE_LAKE_URI": "ftp://host/lake"}, "FORGE_LAKE_URI"),
        ({"FORGE_DB_PREFIX": "Robert'); DROP TABLE students;--"}, "FORGE_DB_PREFIX"),
        ({"FORGE_START_DATE": "2025-13-01"}, "FORGE_START_DATE"),
        ({"FORGE_START_DATE": "2999-01-01"}, "FORGE_START_DATE"),
    ],
)
def test_invalid_values_name_their_variable(environ, named, tmp_path):
    with pytest.raises(ConfigError) as error:
        load_settings({"FORGE_HOME": str(tmp_path), **environ})
    message = str(error.value)
    assert named in message and "\n" not in message


def test_an_object_store_lake_is_a_bucket_prefix_and_credentials_stay_out(tmp_path):
    settings = load_settings({"FORGE_HOME": str(tmp_path), "FORGE_LAKE_URI": "s3://my-bucket/forge-lake"})
    assert str(settings.lake_root) == "s3://my-bucket/forge-lake"
    assert str(load_settings({"FORGE_HOME": str(tmp_path), "FORGE_LAKE_URI": "gs://b/p"}).lake_root) == "gs://b/p"
    with pytest.raises(ConfigError) as error:
        load_settings({"FORGE_HOME": str(tmp_path), "FORGE_LAKE_URI": "s3://AKIAKEY:topsecret@bucket/lake"})
    assert "topsecret" not in str(error.value)


def test_home_that_is_a_file_is_rejected(tmp_path):
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(ConfigError, match="FORGE_HOME"):
        load_settings({"FORGE_HOME": str(target)})


def test_defaults_and_per_source_override(tmp_path):
    settings = load_settings({
        "FORGE_HOME": str(tmp_path),
        "FORGE_PG_URL": "postgresql://app:s3cret@db.internal:5432/postgres",
        "FORGE_PULSE_URL": "postgresql://reader:pw@timescale.internal/pulse_prod",
    })
    assert settings.lake_root == tmp_path / "lake"
    assert settings.pgdata == tmp_path / "pgdata"
    assert not settings.embedded
    forge = source_conninfo(settings, "forge")
    assert "dbname=forge" in forge and "host=db.internal" in forge
    assert "dbname=pulse_prod" in source_conninfo(settings, "pulse")
    assert describe(forge) == "app@db.internal:5432/forge"


def test_unknown_source_is_rejected(tmp_path):
    settings = load_settings({"FORGE_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="unknown source 'mysql'"):
        source_conninfo(settings, "mysql")


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://app:s3cret@db.internal:5432/forge",
        "host=db user=app password=s3cret dbname=forge",
        "connection failed: password='s3cret' host=db",
    ],
)
def test_redact_removes_passwords(text):
    assert "s3cret" not in redact(text)
