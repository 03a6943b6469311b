"""Jobs named for what they do."""

import dagster as dg

TRAINING_GROUPS = ("ingest", "features", "training", "deployment")

train_and_promote = dg.define_asset_job(
    "train_and_promote",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS),
    description="Ingest, clean, split, train, evaluate, register as @challenger, gate @champion.",
)

retrain_on_drift = dg.define_asset_job(
    "retrain_on_drift",
    selection=dg.AssetSelection.groups(*TRAINING_GROUPS, "monitoring"),
    description="Requested by drift_sensor: report the drifted window, then retrain on fresh "
    "data (including labelled production traffic) through the same promotion gate.",
)
