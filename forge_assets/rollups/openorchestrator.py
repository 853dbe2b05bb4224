"""OpenOrchestrator RPA rollups: work-queue throughput and process log levels."""

from forge_assets.rollups.spec import Reconciliation, RollupSpec, integer, real, text

SPECS = (
    RollupSpec(
        name="queue_throughput",
        source="openorchestrator",
        description="Queue elements per day (of creation) and queue: done/failed/pending/abandoned, avg/p95 "
        "processing seconds (end - start) and avg waiting seconds (start - created).",
        reads=("Queues",),
        columns=(
            text("queue_name", "queue"),
            integer("elements", "elements created this day"),
            integer("done", "status DONE"),
            integer("failed", "status FAILED"),
            integer("pending", "status NEW or IN_PROGRESS (backlog)"),
            integer("abandoned", "status ABANDONED"),
            real("avg_processing_s", "mean end - start seconds of finished elements"),
            real("p95_processing_s", "95th percentile end - start seconds"),
            real("avg_wait_s", "mean start - created seconds of started elements"),
        ),
        reconciliation=Reconciliation("elements"),
        plots={"elements": "elements", "pending": "pending"},
    ),
    RollupSpec(
        name="process_log_levels",
        source="openorchestrator",
        description="Log lines per day, process and level.",
        reads=("Logs",),
        columns=(
            text("process_name", "process"),
            integer("lines", "log lines this day"),
            integer("trace", "level TRACE"),
            integer("info", "level INFO"),
            integer("error", "level ERROR"),
        ),
        reconciliation=Reconciliation("lines"),
        plots={"lines": "lines", "errors": "error"},
    ),
)
