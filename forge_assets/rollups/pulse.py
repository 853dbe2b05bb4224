"""OpsConductor-Pulse IoT rollups: device telemetry by the hour, fleet alerts by day."""

from forge_assets.rollups.spec import Reconciliation, RollupSpec, hour, integer, real, text

SPECS = (
    RollupSpec(
        name="device_telemetry_hourly",
        source="pulse",
        description="Telemetry per device, metric (each numeric key of the metrics document) and hour: samples, "
        "avg/min/max/p95.",
        reads=("telemetry",),
        columns=(
            hour(),
            text("tenant_id", "tenant"),
            text("device_id", "device"),
            text("metric", "metric name (temp_c, humidity_pct, battery_pct, ...)"),
            integer("samples", "readings in the hour"),
            real("avg_value", "mean"),
            real("min_value", "minimum"),
            real("max_value", "maximum"),
            real("p95_value", "95th percentile"),
        ),
        reconciliation=Reconciliation("samples"),
        plots={"samples": "samples"},
    ),
    RollupSpec(
        name="fleet_alerts_daily",
        source="pulse",
        description="Alerts opened per day, tenant, severity and status, with distinct devices and time to close.",
        reads=("fleet_alert",),
        columns=(
            text("tenant_id", "tenant"),
            text("severity", "alert severity"),
            text("status", "OPEN, ACKNOWLEDGED or CLOSED when the rollup ran"),
            integer("alerts", "alerts opened this day"),
            integer("devices", "distinct devices alerting"),
            integer("closed_alerts", "of which are closed"),
            real("avg_seconds_to_close", "mean seconds from open to close"),
            real("max_seconds_to_close", "longest seconds from open to close"),
        ),
        reconciliation=Reconciliation("alerts"),
        plots={"alerts": "alerts"},
    ),
)
