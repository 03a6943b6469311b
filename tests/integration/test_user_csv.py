"""A user's CSV in the Telco schema runs through the unchanged pipeline; a broken one registers
nothing."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from churnops.data.synthetic import generate_customers
from registry.mlflow_registry import MlflowModelRegistry
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-user-csv"


def write_telco_csv(path: Path, rows: int) -> Path:
    """Format like the public Telco file: text everywhere, blank TotalCharges for new customers."""
    frame = generate_customers(rows, seed=7).astype(object)
    frame["TotalCharges"] = [
        " " if isinstance(v, float) and np.isnan(v) else f"{v}" for v in frame["TotalCharges"]
    ]
    frame.to_csv(path, index=False)
    return path


def test_pipeline_runs_unchanged_on_a_user_csv(tmp_path: Path, mlflow_uri: str) -> None:
    csv = write_telco_csv(tmp_path / "telco.csv", 4_000)
    as_text = pd.read_csv(csv, dtype=str, keep_default_na=False)
    assert (as_text["TotalCharges"] == " ").any(), "fixture must contain blank TotalCharges"
    result = materialize_pipeline(mlflow_uri, MODEL, data_path=str(csv))
    assert result.success
    assert result.output_for_node("candidate_evaluation")["roc_auc"] >= 0.75
    assert MlflowModelRegistry(mlflow_uri, MODEL, "churn-training").champion() is not None


def test_broken_csv_fails_naming_file_and_column_and_registers_nothing(
    tmp_path: Path, mlflow_uri: str
) -> None:
    csv = write_telco_csv(tmp_path / "broken.csv", 500)
    lines = csv.read_text().splitlines()
    fields = lines[3].split(",")
    fields[5] = "twelve"  # tenure on file line 4
    lines[3] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    registry = MlflowModelRegistry(mlflow_uri, MODEL + "-broken", "churn-training")
    result = materialize_pipeline(
        mlflow_uri, MODEL + "-broken", raise_on_error=False, data_path=str(csv)
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    message = failure.event_specific_data.error.cause.message
    assert str(csv) in message
    assert "'tenure'" in message
    assert "line 4" in message
    assert registry.versions() == []
