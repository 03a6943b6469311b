"""Dagster retries with exponential backoff ride out an MLflow outage: the training graph runs
in-process (the embedded executor) while the real `mlflow server` is down, the first step that
needs MLflow fails and is retried, and the run succeeds once the server is back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import dagster as dg
import pytest

from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import restartable_mlflow
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-retries"


def _events(instance: dg.DagsterInstance, kind: dg.DagsterEventType) -> list:
    return [
        record.dagster_event
        for run in instance.get_runs()
        for record in instance.all_logs(run.run_id, of_type=kind)
    ]


def test_steps_retry_with_backoff_until_mlflow_is_back(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    figures,
) -> None:
    # The MLflow client's own retries would hide the outage from Dagster: switch them off.
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri, registry_server = restartable_mlflow(tmp_path)

    with registry_server():
        pass  # the registry existed, and now it is down
    instance = dg.DagsterInstance.ephemeral()
    outcome: dict[str, dg.ExecuteInProcessResult] = {}
    run = threading.Thread(
        target=lambda: outcome.update(
            result=materialize_pipeline(uri, MODEL, instance=instance, synthetic_rows=5_000)
        )
    )
    run.start()
    deadline = time.monotonic() + 180
    while not _events(instance, dg.DagsterEventType.STEP_UP_FOR_RETRY):
        assert run.is_alive(), "the run ended without retrying"
        assert time.monotonic() < deadline, "no step was retried"
        time.sleep(0.2)
    down_for = time.monotonic()
    with registry_server():  # back on the same port and backend
        run.join(timeout=300)
        down_for = time.monotonic() - down_for
        assert not run.is_alive()
        result = outcome["result"]
        assert result.success
        champion = MlflowModelRegistry(uri, MODEL, "churn-training").champion()
    retried = _events(instance, dg.DagsterEventType.STEP_UP_FOR_RETRY)
    restarted = _events(instance, dg.DagsterEventType.STEP_RESTARTED)
    figures(
        f"\nretries: {len(retried)} retry events "
        f"({sorted({e.step_key for e in retried})}), run finished {down_for:.0f}s after "
        f"the first retry"
    )
    assert {e.step_key for e in retried} >= {"churn_candidate"}
    assert len(restarted) == len(retried)
    assert not _events(instance, dg.DagsterEventType.STEP_FAILURE)
    assert champion is not None and champion.version == result.output_for_node("champion_version")
