"""Manual approval from the CLI against a real MLflow server: the real training graph leaves
its winner `pending-approval`, `churnops approve` promotes it and `churnops status` shows who
approved it and when."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from launcher.cli import app
from registry.mlflow_registry import MlflowModelRegistry
from registry.promotion import APPROVAL_TAG, PENDING
from tests.integration.pipeline import materialization_metadata, materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-approval"


def test_the_gate_waits_for_approval_and_the_cli_approves_recording_who(
    monkeypatch: pytest.MonkeyPatch, mlflow_uri: str
) -> None:
    result = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=3_000, gate_approval="manual")
    version = result.output_for_node("challenger_version")
    assert result.output_for_node("champion_version") == ""  # nobody serves yet
    metadata = materialization_metadata(result, "champion_version")
    assert metadata["pending_approval"].value is True and metadata["promoted"].value is False
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "churn-training")
    assert registry.champion() is None
    assert registry.version(version).tags[APPROVAL_TAG] == PENDING

    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("CHURNOPS_MODEL_NAME", MODEL)
    runner = CliRunner()
    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    row = next(line for line in status.output.splitlines() if line.startswith(f"│ {version} "))
    assert "pending-appr" in row  # the table may shorten it to the console width

    wrong = runner.invoke(app, ["approve", "99"])
    assert wrong.exit_code == 1
    assert f"model '{MODEL}' has no version 99 to approve" in wrong.output

    approved = runner.invoke(app, ["approve", version, "--by", "alice"])
    assert approved.exit_code == 0, approved.output
    assert f"version None → {version}, approved by alice" in approved.output
    assert registry.champion().version == version
    event = registry.alias_history()[-1]
    assert (event.action, event.by, event.to_version) == ("approve", "alice", version)

    again = runner.invoke(app, ["approve", version])
    assert again.exit_code == 1 and "not pending approval (it is approved)" in again.output

    status = runner.invoke(app, ["status"])
    history = [line for line in status.output.splitlines() if " approve " in line]
    assert len(history) == 1 and f"None → {version} by alice" in history[0]
    assert event.at in history[0]
