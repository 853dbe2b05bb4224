"""Forge automation controller rollups: the seed's diagnostic queries, kept as daily history."""

from forge_assets.assets.rollups.columns import exact_seconds, flag, integer, real, text
from forge_assets.assets.rollups.spec import Reconciliation, RollupSpec

SPECS = (
    RollupSpec(
        name="job_duration_by_template",
        source="forge",
        description="Jobs per day, organization and job template: runs by status, the exact sum of elapsed seconds "
        "per finished status, and avg/p50/p95/max elapsed seconds and total job-seconds over all finished jobs. "
        "The seed's 'Longest jobs (average by template)' over any range of days is sum(elapsed_successful_s) / "
        "sum(runs_successful) (the lake's `forge_longest_jobs` macro); the avg/p50/p95 columns mix every finished "
        "status and describe one day only.",
        reads=("main_job", "main_jobtemplate", "main_organization"),
        columns=(
            integer("organization_id", "organization of the job"),
            text("organization_name", "organization name"),
            integer("job_template_id", "job template (NULL for jobs without one)"),
            text("job_template_name", "job template name"),
            integer("runs", "jobs created this day"),
            integer("runs_successful", "status successful"),
            integer("runs_failed", "status failed"),
            integer("runs_error", "status error"),
            integer("runs_canceled", "status canceled"),
            integer("runs_unfinished", "status new, pending, waiting or running"),
            integer("runs_other_status", "any status outside Forge's set (a data-quality finding)"),
            integer("finished_runs", "jobs with a finish time: the population of the duration columns"),
            real("avg_elapsed_s", "mean elapsed seconds"),
            real("p50_elapsed_s", "median elapsed seconds"),
            real("p95_elapsed_s", "95th percentile of elapsed seconds"),
            real("max_elapsed_s", "longest elapsed seconds"),
            real("total_job_seconds", "sum of elapsed seconds"),
            exact_seconds("elapsed_successful_s", "sum of elapsed seconds of the successful jobs (exact)"),
            exact_seconds("elapsed_failed_s", "sum of elapsed seconds of the failed jobs (exact)"),
            exact_seconds("elapsed_error_s", "sum of elapsed seconds of the jobs in error (exact)"),
            exact_seconds("elapsed_canceled_s", "sum of elapsed seconds of the canceled jobs (exact)"),
        ),
        reconciliation=Reconciliation(
            "runs",
            "SELECT count(*) FROM main_job WHERE created >= %(start)s AND created < %(end)s",
        ),
        plots={"runs": "runs", "failed_runs": "runs_failed", "job_seconds": "total_job_seconds"},
    ),
    RollupSpec(
        name="job_status_counts",
        source="forge",
        description="Jobs per day, status and launch type (the seed's 'Jobs by status', kept daily).",
        reads=("main_job",),
        columns=(
            text("status", "job status"),
            text("launch_type", "manual, scheduled, workflow, webhook, relaunch, ..."),
            integer("jobs", "jobs created this day"),
            integer("finished_jobs", "of which have finished"),
        ),
        reconciliation=Reconciliation(
            "jobs",
            "SELECT count(*) FROM main_job WHERE created >= %(start)s AND created < %(end)s",
        ),
        plots={"jobs": "jobs"},
    ),
    RollupSpec(
        name="failing_hosts",
        source="forge",
        description="Hosts with a failed or unreachable run on the day (from job host summaries), the host's "
        "current has_active_failures, and how many days in a row it has been failing.",
        reads=("main_jobhostsummary", "main_job", "main_host", "main_inventory"),
        columns=(
            integer("host_id", "host"),
            text("host_name", "host name"),
            integer("inventory_id", "inventory of the host"),
            text("inventory_name", "inventory name"),
            integer("runs", "job runs on the host this day"),
            integer("ok_runs", "runs without failures or unreachable tasks"),
            integer("failed_runs", "runs with at least one failed task"),
            integer("unreachable_runs", "runs where the host was unreachable"),
            flag("has_active_failures", "the host's flag when the rollup ran"),
            integer("consecutive_failing_days", "days in a row ending this day with a failed run (0: not failing "
                    "this day; looks back at most 90 days)"),
        ),
        reconciliation=Reconciliation(
            "failed_runs",
            "SELECT count(*) FROM main_jobhostsummary s JOIN main_job j ON j.id = s.job_id WHERE s.failures > 0 AND s.host_id IS NOT NULL AND j.created >= %(start)s AND j.created < %(end)s",
        ),
        plots={"failed_runs": "failed_runs"},
    ),
    RollupSpec(
        name="template_host_outcomes",
        source="forge",
        description="Per day (of the job's creation), job template and host: job runs and the sums of the job host "
        "summaries' task outcomes (ok, changed, failures, unreachable, skipped, ...), so per-template pass/fail/"
        "unreachable reports survive the purge of jobs and summaries. Every column is additive over days.",
        reads=("main_jobhostsummary", "main_job", "main_jobtemplate"),
        columns=(
            integer("job_template_id", "job template (NULL for jobs without one)"),
            text("job_template_name", "job template name"),
            integer("host_id", "host (NULL once the host was deleted)"),
            text("host_name", "host name as the summary recorded it"),
            integer("runs", "job runs on the host (job host summaries)"),
            integer("runs_ok", "runs without failed or unreachable tasks"),
            integer("runs_failed", "runs with at least one failed task"),
            integer("runs_unreachable", "runs where the host was unreachable"),
            integer("ok", "tasks ok"),
            integer("changed", "tasks changed"),
            integer("failures", "tasks failed"),
            integer("unreachable", "tasks unreachable (dark)"),
            integer("skipped", "tasks skipped"),
            integer("ignored", "failed tasks ignored"),
            integer("rescued", "tasks rescued"),
            integer("processed", "hosts processed (the summary's processed count)"),
        ),
        reconciliation=Reconciliation(
            "runs",
            "SELECT count(*) FROM main_jobhostsummary s JOIN main_job j ON j.id = s.job_id WHERE j.created >= %(start)s AND j.created < %(end)s",
        ),
        plots={"runs": "runs", "failed_runs": "runs_failed", "unreachable_runs": "runs_unreachable"},
    ),
    RollupSpec(
        name="tenant_usage",
        source="forge",
        description="Per day and organization: launches, job-seconds, distinct hosts, peak concurrent jobs, quota "
        "decisions allowed/blocked by kind, and utilization of the tenant_max_* limits.",
        reads=("main_job", "main_jobhostsummary", "main_tenantquotaevent", "main_organization"),
        columns=(
            integer("organization_id", "organization (every one that existed on the day, zeros when idle)"),
            text("organization_name", "organization name"),
            integer("launches", "jobs created this day"),
            real("job_seconds", "elapsed seconds of the finished ones"),
            integer("distinct_hosts", "hosts the day's jobs ran on"),
            integer("peak_concurrent_jobs", "most jobs running at one instant during the day"),
            integer("quota_allowed_concurrent_jobs", "launches allowed by the concurrent-jobs quota"),
            integer("quota_blocked_concurrent_jobs", "launches blocked by the concurrent-jobs quota"),
            integer("quota_allowed_daily_launches", "launches allowed by the daily-launches quota"),
            integer("quota_blocked_daily_launches", "launches blocked by the daily-launches quota"),
            integer("quota_allowed_hosts", "launches allowed by the hosts quota"),
            integer("quota_blocked_hosts", "launches blocked by the hosts quota"),
            integer("quota_allowed_storage_mb", "launches allowed by the storage quota"),
            integer("quota_blocked_storage_mb", "launches blocked by the storage quota"),
            integer("tenant_max_daily_launches", "limit, NULL when none"),
            integer("tenant_max_concurrent_jobs", "limit, NULL when none"),
            integer("tenant_max_hosts", "limit, NULL when none"),
            real("daily_launch_utilization", "launches / tenant_max_daily_launches"),
            real("concurrency_utilization", "peak_concurrent_jobs / tenant_max_concurrent_jobs"),
            real("host_utilization", "distinct_hosts / tenant_max_hosts"),
        ),
        reconciliation=Reconciliation(
            "launches",
            "SELECT count(*) FROM main_job WHERE organization_id IS NOT NULL AND created >= %(start)s AND created < %(end)s",
        ),
        plots={"launches": "launches", "blocked_launches": "quota_blocked_daily_launches"},
    ),
)
