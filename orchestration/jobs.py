"""Jobs named for what they do."""

import dagster as dg

TRAIN_AND_PROMOTE = "train_and_promote"

train_and_promote = dg.define_asset_job(
    TRAIN_AND_PROMOTE,
    selection=dg.AssetSelection.groups("ingest", "features", "training", "deployment"),
    description="Ingest, clean, split, train, evaluate, register as @challenger, gate @champion.",
)
