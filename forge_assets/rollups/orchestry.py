"""Orchestry autoscaler rollups: its metrics-window statistics and hourly event compression, kept."""

from forge_assets.rollups.spec import Reconciliation, RollupSpec, hour, integer, real, text

SPECS = (
    RollupSpec(
        name="app_metrics_hourly",
        source="orchestry",
        description="Metrics per application, metric type, aggregation level and hour: avg/min/max/p50/p95 and "
        "data points (the shape of Orchestry's get_app_metrics_window).",
        reads=("metrics",),
        columns=(
            hour(),
            text("app_name", "application"),
            text("metric_type", "cpu_percent, memory_percent, rps, latency_p95, ..."),
            text("aggregation_level", "instance, app or system"),
            real("avg_value", "mean"),
            real("min_value", "minimum"),
            real("max_value", "maximum"),
            real("p50_value", "median"),
            real("p95_value", "95th percentile"),
            integer("data_points", "samples in the hour"),
        ),
        reconciliation=Reconciliation("data_points"),
        plots={"data_points": "data_points"},
    ),
    RollupSpec(
        name="app_events_hourly",
        source="orchestry",
        description="Events per application, event type and hour, with counts per severity (Orchestry's hourly "
        "event compression, without deleting the events it summarises).",
        reads=("events",),
        columns=(
            hour(),
            text("app_name", "application (NULL for system events)"),
            text("event_type", "registration, scaling, health, error, ..."),
            integer("events", "events in the hour"),
            integer("debug", "severity debug"),
            integer("info", "severity info"),
            integer("warning", "severity warning"),
            integer("error", "severity error"),
            integer("critical", "severity critical"),
            integer("unspecified", "no severity"),
        ),
        reconciliation=Reconciliation("events"),
        plots={"events": "events", "errors": "error"},
    ),
)
