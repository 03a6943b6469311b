"""The daily export of the prediction log: one Parquet file per UTC day, labels joined, other
days left out; on SQLite there are no partitions to keep."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from churnops.monitoring.export import day_location, export_schema
from churnops.monitoring.partitions import day_start
from churnops.settings import Settings
from orchestration.assets.prediction_log import prediction_log
from orchestration.definitions import build_resources
from tests.unit.core.test_binned_drift import _customers, _logged

pytestmark = pytest.mark.unit

TELCO = telco_contract()
DAY = dt.date(2026, 3, 4)


def _export(resources: dict) -> dict:
    """Materialize DAY's partition of `prediction_log`; its metadata."""
    result = dg.materialize(
        [prediction_log],
        resources={
            k: resources[k] for k in ("prediction_store", "prediction_log_policy", "contract")
        },
        partition_key=DAY.isoformat(),
    )
    return result.asset_materializations_for_node("prediction_log")[0].metadata


def test_a_day_is_exported_with_its_labels_and_nothing_else(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, prediction_retention_days=3)
    resources = build_resources(settings)
    engine = prediction_store.connect(settings.prediction_store, TELCO)
    rows = _logged(_customers(30, 2), 0)
    start = day_start(DAY)
    for i, row in enumerate(rows):  # 10 the day before, 15 on the day, 5 the day after
        row["ts"] = start + (i - 10) * 3600.0 if i < 25 else start + 86_400 + i
    prediction_store.write_predictions(engine, TELCO, rows)
    prediction_store.write_feedback(
        engine, TELCO, [{"request_id": "r12", "Churn": "Yes"}, {"customerID": "c13", "Churn": "No"}]
    )
    metadata = _export(resources)
    path = day_location(settings.prediction_exports_location, DAY)
    assert metadata["rows"].value == 15 and metadata["path"].value == path
    frame = pd.read_parquet(path)
    assert frame["request_id"].tolist() == [f"r{i}" for i in range(10, 25)]
    labels = frame.set_index("request_id")["Churn"]
    assert labels["r12"] == "Yes" and labels["r13"] == "No" and labels.isna().sum() == 13
    assert frame["predicted_churn"].isin(["Yes", "No"]).all()
    assert pq.read_schema(path).remove_metadata() == export_schema(TELCO)
    assert "partitions_dropped" not in metadata  # SQLite keeps one table


@pytest.mark.parametrize("retention_days", [3, 0])
def test_shadow_scores_past_the_retention_are_deleted_by_the_export(
    tmp_path: Path, retention_days: int
) -> None:
    settings = Settings(home=tmp_path, prediction_retention_days=retention_days)
    resources = build_resources(settings)
    engine = prediction_store.connect(settings.prediction_store, TELCO)
    today = dt.datetime.now(dt.UTC).date()
    old = day_start(today - dt.timedelta(days=4)) + 60  # before the 3 days kept
    kept = day_start(today - dt.timedelta(days=3)) + 60  # the oldest day kept
    prediction_store.write_shadow_rows(
        engine, TELCO, [("old", "2", old, 0.1, "No"), ("kept", "2", kept, 0.2, "No")]
    )
    metadata = _export(resources)
    left = set(prediction_store.read_shadow_predictions(engine, TELCO)["request_id"])
    if retention_days:
        assert metadata["shadow_rows_pruned"].value == 1 and left == {"kept"}
    else:  # 0 keeps every day
        assert "shadow_rows_pruned" not in metadata and left == {"old", "kept"}
