"""`prediction_log`: each UTC day of served predictions joined with their labels, exported to
Parquet (the state folder or an object store); the same run keeps the PostgreSQL store's day
partitions (creates the coming days, drops the days past the retention, migrates a store made
before partitioning) and deletes the shadow scores past the retention on every store. The
work is `churnops.monitoring.export` and `.partitions`."""

import datetime as dt

import dagster as dg

from churnops.monitoring import partitions
from churnops.monitoring.export import day_location, export_day
from churnops.monitoring.prediction_store import prune_shadow_predictions, store_schema
from orchestration.metadata import platform_asset
from orchestration.resources import DataContractResource, PredictionLogPolicy, PredictionStore

# Its own group: the retraining job selects the monitoring group, and a daily-partitioned asset
# in an unpartitioned run fails (it has no day to export).
PREDICTION_LOG = "prediction_log"
LOG_DAYS = dg.DailyPartitionsDefinition(start_date="2026-01-01")


@platform_asset(PREDICTION_LOG, "sql", "parquet", external=True, partitions_def=LOG_DAYS)
def prediction_log(
    context: dg.AssetExecutionContext,
    prediction_store: PredictionStore,
    prediction_log_policy: PredictionLogPolicy,
    contract: DataContractResource,
) -> dg.MaterializeResult:
    """One day of the prediction log, with labels, as Parquet; then partition upkeep."""
    data_contract = contract.load()
    day = dt.date.fromisoformat(context.partition_key)
    engine = prediction_store.engine()
    rows = export_day(engine, data_contract, day, prediction_log_policy.output)
    context.log.info(f"exported {rows:,} predictions of {day}")
    today = dt.datetime.now(dt.UTC).date()
    retention = prediction_log_policy.retention_days
    upkeep = partitions.maintain(engine, store_schema(data_contract).predictions, today, retention)
    metadata: dict[str, object] = {
        "rows": rows,
        "path": day_location(prediction_log_policy.output, day),
    }
    if retention > 0:  # shadow scores follow the days the log keeps, on every store
        cutoff = partitions.day_start(today - dt.timedelta(days=retention))
        pruned = prune_shadow_predictions(engine, data_contract, cutoff)
        metadata["shadow_rows_pruned"] = pruned
    if upkeep is not None:
        metadata |= {
            "partitions_created": ", ".join(map(str, upkeep.created)) or "none",
            "partitions_dropped": ", ".join(map(str, upkeep.dropped)) or "none",
            "migrated_rows": upkeep.migrated_rows if upkeep.migrated_rows is not None else 0,
        }
    return dg.MaterializeResult(metadata=metadata)


export_prediction_log = dg.define_asset_job(
    "export_prediction_log",
    selection=[prediction_log],
    partitions_def=LOG_DAYS,
    description="Exports a day of the prediction log to Parquet and keeps the store's partitions.",
)

daily_prediction_export = dg.build_schedule_from_partitioned_job(
    export_prediction_log,
    hour_of_day=1,
    name="daily_prediction_export",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="01:00 UTC: exports yesterday's predictions and applies the retention.",
)
