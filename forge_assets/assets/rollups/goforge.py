"""GoForge PaaS rollups: deployment outcomes and durations, container resource use by the hour."""

from forge_assets.assets.rollups.columns import hour, integer, real, text
from forge_assets.assets.rollups.spec import Reconciliation, RollupSpec

SPECS = (
    RollupSpec(
        name="deployment_durations",
        source="goforge",
        description="Deployments per day, project and environment: counts by status, and build/deploy/total "
        "duration statistics over finished deployments (build = start to last build log line).",
        reads=("deployments", "deployment_logs", "environments", "projects"),
        columns=(
            text("project_id", "project (uuid)"),
            text("project_name", "project name"),
            text("environment_name", "environment (production, staging, ...)"),
            integer("deployments", "deployments created this day"),
            integer("status_running", "status running (deployed)"),
            integer("status_failed", "status failed"),
            integer("status_rolled_back", "status rolled_back"),
            integer("status_cancelled", "status cancelled"),
            integer("status_in_progress", "pending, cloning, building or deploying"),
            integer("finished_deployments", "with a finish time: the population of the duration columns"),
            real("avg_build_s", "mean build seconds"),
            real("p50_build_s", "median build seconds"),
            real("p95_build_s", "95th percentile build seconds"),
            real("max_build_s", "longest build seconds"),
            real("avg_deploy_s", "mean deploy seconds"),
            real("p50_deploy_s", "median deploy seconds"),
            real("p95_deploy_s", "95th percentile deploy seconds"),
            real("max_deploy_s", "longest deploy seconds"),
            real("avg_total_s", "mean start-to-finish seconds"),
            real("p95_total_s", "95th percentile start-to-finish seconds"),
            real("max_total_s", "longest start-to-finish seconds"),
        ),
        reconciliation=Reconciliation(
            "deployments",
            "SELECT count(*) FROM deployments WHERE created_at >= %(start)s AND created_at < %(end)s",
        ),
        plots={"deployments": "deployments", "failed": "status_failed"},
    ),
    RollupSpec(
        name="container_metrics_hourly",
        source="goforge",
        description="Container metrics per container, environment and hour: avg/max/p95 CPU and memory percent, "
        "and network and block I/O deltas of the cumulative counters (restarts handled).",
        reads=("container_metrics", "containers", "deployments", "environments", "projects"),
        columns=(
            hour(),
            text("container_id", "container (uuid)"),
            text("container_name", "container name"),
            text("project_name", "project of the container's deployment"),
            text("environment_name", "environment of the container's deployment"),
            integer("samples", "metric samples in the hour"),
            real("cpu_avg", "mean CPU percent"),
            real("cpu_max", "highest CPU percent"),
            real("cpu_p95", "95th percentile CPU percent"),
            real("memory_avg", "mean memory percent"),
            real("memory_max", "highest memory percent"),
            real("memory_p95", "95th percentile memory percent"),
            integer("network_rx_bytes", "bytes received in the hour"),
            integer("network_tx_bytes", "bytes sent in the hour"),
            integer("block_read_bytes", "bytes read from block devices in the hour"),
            integer("block_write_bytes", "bytes written to block devices in the hour"),
        ),
        reconciliation=Reconciliation(
            "samples",
            "SELECT count(*) FROM container_metrics WHERE timestamp >= %(start)s AND timestamp < %(end)s",
        ),
        plots={"samples": "samples", "network_rx_bytes": "network_rx_bytes"},
    ),
)
