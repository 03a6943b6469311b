"""Typed, validated customers and the stratified train/holdout split."""

import dagster as dg
import pandas as pd

from churnops.data.cleaning import clean_customers as clean
from churnops.data.fingerprint import frame_fingerprint
from churnops.data.split import Split, split_keeping_reference, stratified_split
from orchestration.metadata import frame_preview, platform_asset
from orchestration.resources import CustomerSource, DataContractResource, TrainingPolicy

FEATURES = "features"


@platform_asset(FEATURES, "pandas")
def clean_customers(
    raw_customers: pd.DataFrame, customer_source: CustomerSource, contract: DataContractResource
) -> dg.Output[pd.DataFrame]:
    """Contract-typed customers; a row that breaks the contract fails the run, naming it."""
    data_contract = contract.load()
    result = clean(raw_customers, customer_source.name, data_contract)
    frame = result.frame
    churned = frame[data_contract.target.name]
    return dg.Output(
        frame,
        metadata={
            "dagster/row_count": len(frame),
            "duplicates_dropped": result.duplicates_dropped,
            "churn_rate": round(float(churned.mean()), 4) if len(frame) else 0.0,
            "fingerprint": frame_fingerprint(frame),
            "dagster/column_schema": dg.TableSchema(
                columns=[dg.TableColumn(c, str(frame[c].dtype)) for c in data_contract.columns]
            ),
            "preview": frame_preview(frame),
        },
    )


@platform_asset(FEATURES, "pandas")
def customer_split(
    clean_customers: pd.DataFrame,
    customer_source: CustomerSource,
    training_policy: TrainingPolicy,
    contract: DataContractResource,
) -> dg.Output[Split]:
    """Stratified, seeded train/holdout split; both models in a gate decision use this holdout.
    With production labels, the base data's own holdout is kept as the frozen reference the
    gate always checks (see `split_keeping_reference`)."""
    data_contract = contract.load()
    fraction, seed = training_policy.holdout_fraction, training_policy.seed
    if customer_source.prediction_store is None:
        split = stratified_split(clean_customers, data_contract, fraction, seed)
    else:
        base = clean(customer_source.load_base(data_contract), customer_source.name, data_contract)
        split = split_keeping_reference(clean_customers, base.frame, data_contract, fraction, seed)
    return dg.Output(split, metadata=split.summary())
