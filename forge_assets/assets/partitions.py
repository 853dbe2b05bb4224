"""The one partitions definition every daily asset shares: UTC days from FORGE_START_DATE."""

from dagster import DailyPartitionsDefinition

from forge_assets.config import load_settings

DAILY = DailyPartitionsDefinition(start_date=load_settings().start_date, timezone="UTC")
