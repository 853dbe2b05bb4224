"""Failed cleanup runs: logged, recorded on the archive assets they were meant to materialize, and alerted."""

from dagster import (
    AssetKey,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    RunFailureSensorContext,
    run_failure_sensor,
)

from forge_assets.assets.names import RUN_TAG_TABLE
from forge_assets.conninfo import redact
from forge_assets.jobs.asset_jobs import archive_jobs, rollup_job
from forge_assets.resources.alerts import FailureAlerts

MAX_ERROR_CHARS = 2000


def describe_failure(context: RunFailureSensorContext) -> dict:
    """The failure as plain data: run, job, partition, assets, and each failed step's error (passwords removed)."""
    run = context.dagster_run
    steps = {event.step_key: redact(event.event_specific_data.error.message.strip())[:MAX_ERROR_CHARS]
             for event in context.get_step_failure_events()
             if event.event_specific_data and event.event_specific_data.error}
    run_message = context.failure_event.message or ""
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "table": run.tags.get(RUN_TAG_TABLE),
        "run_key": run.tags.get("dagster/run_key"),
        "assets": sorted(key.to_user_string() for key in run.asset_selection or ()),
        "error": redact(run_message)[:MAX_ERROR_CHARS],
        "failed_steps": steps,
    }


@run_failure_sensor(
    name="cleanup_failure_sensor",
    monitored_jobs=[rollup_job, *archive_jobs],
    default_status=DefaultSensorStatus.RUNNING,
    description="Records every failed archive or rollup run: an error log line, an observation on each asset the "
                "run was meant to materialize (visible on its page), and FORGE_ALERT_COMMAND when set (once per "
                "failing day: the retention sensor's retries after a back-off do not alert again).",
)
def cleanup_failure_sensor(context: RunFailureSensorContext, alerts: FailureAlerts):
    failure = describe_failure(context)
    context.log.error(f"{failure['job']} run {failure['run_id']} failed for {failure['partition']}: "
                      f"{'; '.join(failure['failed_steps'].values()) or failure['error']}")
    for name in failure["assets"]:
        context.instance.report_runless_asset_event(AssetObservation(
            asset_key=AssetKey.from_user_string(name),
            partition=failure["partition"] or context.dagster_run.tags.get("dagster/asset_partition_range_start"),
            metadata={"failed_run": MetadataValue.dagster_run(failure["run_id"]), "job": failure["job"],
                      "error": MetadataValue.md("\n\n".join(failure["failed_steps"].values()) or failure["error"])},
        ))
    if context.dagster_run.tags.get("forge/attempt", "1") != "1":
        context.log.info("a retry of days that already failed: alerted on their first failure, not again")
        return
    problem = alerts.send(failure)
    if problem:
        context.log.error(problem)
