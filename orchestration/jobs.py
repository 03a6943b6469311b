"""Jobs named for what they do."""

import dagster as dg

TRAINING_GROUPS = ("ingest", "features", "training", "deployment")
# A run that dies with its worker (a crash, a stop, a lost node) is re-executed from the failed
# step by the daemon's run retries; a step that fails on its own is not (its retry policy has
# had its say). The instance must enable run retries (every instance churnops writes does).
RECOVERABLE = {"dagster/max_retries": "5", "dagster/retry_on_asset_or_op_failure": "false"}

train_and_promote = dg.define_asset_job(
    "train_and_promote",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest, clean, split, train, evaluate, register as @challenger, gate @champion.",
    tags=RECOVERABLE,
)

retrain_on_drift = dg.define_asset_job(
    "retrain_on_drift",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS, "monitoring"),
    description="Requested by drift_sensor: report the drifted window, then retrain on fresh "
    "data (including labelled production traffic) through the same promotion gate.",
    tags=RECOVERABLE,
)

score_customers = dg.define_asset_job(
    "score_customers",
    selection=dg.AssetSelection.groups("scoring"),
    description="Score the customer base with @champion into the scoring date's Parquet file "
    "(ranks, decision at the served threshold, reason codes).",
    tags=RECOVERABLE,
)
