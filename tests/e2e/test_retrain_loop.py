"""The closed loop with real processes: serve v1, stable traffic is left alone, drifted traffic
triggers exactly one retraining run whose model the gate promotes and the server picks up."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from mlflow.tracking import MlflowClient

from churnops.contract import telco_contract
from launcher.simulator import simulate
from registry.mlflow_registry import MlflowModelRegistry
from tests.e2e.stack import RunningStack, start_stack

pytestmark = pytest.mark.e2e

TELCO = telco_contract()
example_record = TELCO.example_record

RETRAIN_JOB = "retrain_on_drift"


def wait_for(predicate, timeout: float, what: str, stack: RunningStack):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert stack.proc.poll() is None, stack.output()[-4000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_drift_triggers_one_retrain_and_serving_follows(tmp_path: Path) -> None:
    stack = start_stack(
        tmp_path,
        synthetic_rows="20000",
        alias_poll_seconds="2",
        monitor_interval_seconds="5",
        monitor_min_rows="2500",
    )
    try:
        registry = MlflowModelRegistry(stack.mlflow, "churn", "churn-training")
        first = registry.champion().version
        served = httpx.post(f"{stack.bento}/predict", json={"customer": example_record()})
        assert served.json()["model_version"] == first

        stable = simulate(stack.bento, 3000, contract=TELCO, seed=11, batch_size=500)
        assert stable.errors == 0 and stable.predictions == 3000
        skip = wait_for(
            lambda: next(
                (
                    t
                    for t in stack.sensor_ticks("drift_sensor")
                    if t["status"] == "SKIPPED" and "stable over" in (t["skipReason"] or "")
                ),
                None,
            ),
            120,
            "a tick that evaluated the stable window",
            stack,
        )
        assert f"vs champion v{first}" in skip["skipReason"]
        assert stack.runs(RETRAIN_JOB) == []

        drifted = simulate(stack.bento, 4000, contract=TELCO, seed=12, batch_size=500, drifted=True)
        assert drifted.errors == 0 and drifted.labels_sent == 4000
        run = wait_for(lambda: stack.runs(RETRAIN_JOB), 120, "the retraining run", stack)[0]
        tags = {tag["key"]: tag["value"] for tag in run["tags"]}
        assert tags["churnops/trigger"] == "drift_sensor"
        assert "features drifted" in tags["churnops/reason"]
        finished = wait_for(
            lambda: next(
                (r for r in stack.runs(RETRAIN_JOB) if r["status"] in ("SUCCESS", "FAILURE")), None
            ),
            420,
            "the retraining run to finish",
            stack,
        )
        assert finished["status"] == "SUCCESS"

        second = registry.champion().version
        assert second != first
        promoted = registry.version(second)
        assert promoted.tags["gate.decision"] == "promoted"
        assert promoted.tags["dagster.run_id"] == finished["runId"]
        mlflow = MlflowClient(stack.mlflow)
        # Retraining saw labelled production traffic on top of the 20k base rows (at least the
        # stable window's 3000; drifted labels may still be arriving when the run reads).
        params = mlflow.get_run(promoted.run_id).data.params
        assert int(params["train_rows"]) + int(params["holdout_rows"]) >= 20_000 + 3_000
        reports = mlflow.search_runs(
            [mlflow.get_experiment_by_name("churn-monitoring").experiment_id]
        )
        assert len(reports) == 1
        assert reports[0].data.metrics["psi.MonthlyCharges"] >= 0.2
        assert reports[0].data.tags["dagster.run_id"] == finished["runId"]
        wait_for(
            lambda: (
                httpx.post(f"{stack.bento}/predict", json={"customer": example_record()}).json()[
                    "model_version"
                ]
                == second
            ),
            60,
            "the Bento server to serve the new champion",
            stack,
        )
        time.sleep(12)  # two more sensor intervals: the window must not trigger again
        assert len(stack.runs(RETRAIN_JOB)) == 1
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
