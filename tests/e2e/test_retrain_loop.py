"""The closed loop with real processes: serve v1, stable traffic is left alone, drifted traffic
triggers one retraining run that survives a stop and crashes, whose model the gate promotes and
the server picks up."""

from __future__ import annotations

import json
import random
import subprocess
import time
from pathlib import Path

import dagster as dg
import httpx
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from churnops.contract import telco_contract
from launcher.recovery import open_instance
from launcher.simulator import simulate
from registry.mlflow_registry import MlflowModelRegistry
from tests.e2e.stack import BIN, RunningStack, start_stack, wait_for

pytestmark = pytest.mark.e2e

TELCO = telco_contract()
example_record = TELCO.example_record

RETRAIN_JOB = "retrain_on_drift"
SCORING_JOB = "score_customers"


def _tags(run: dict) -> dict[str, str]:
    return {tag["key"]: tag["value"] for tag in run["tags"]}


def _partition_file(tmp_path: Path, tags: dict[str, str]) -> Path:
    """Where `churnops up`'s scoring run wrote its date's file (the default HOME/scores)."""
    date = tags["dagster/partition"]
    return tmp_path / "state" / "scores" / f"date={date}" / "scores.parquet"


SETTINGS = {
    "synthetic_rows": "20000",
    "alias_poll_seconds": "2",
    "monitor_interval_seconds": "5",
    "monitor_min_rows": "2500",
    "stop_grace_seconds": "2",
}
IN_FLIGHT = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING"}
# Where each SIGKILL lands in an attempt: before its first step ends, while the model trains,
# while the version is registered and gated.
MOMENTS = {
    "starting": (),
    "training": ("churn_candidate",),
    # The version is registered, then gated: a kill up to a second in still lands in the run.
    "registering": ("challenger_version",),
}


def _restart(tmp_path: Path, life: int, wait_up: bool = True) -> RunningStack:
    return start_stack(tmp_path, log_name=f"up-{life}.log", wait_up=wait_up, **SETTINGS)


def _dagster_answers(stack: RunningStack) -> bool:
    try:
        return httpx.get(f"{stack.dagster}/server_info", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _new_attempt(stack: RunningStack, seen: set[str]) -> dict | None:
    try:
        runs = stack.runs(RETRAIN_JOB)
    except httpx.HTTPError:
        return None
    # A worker is on it: a queued run has nothing to lose yet.
    started = ("STARTING", "STARTED")
    return next((r for r in runs if r["runId"] not in seen and r["status"] in started), None)


def _crash_at(stack: RunningStack, moment: str, seen: set[str], rng: random.Random) -> str:
    """Wait for the next attempt of the retraining to reach `moment`, then SIGKILL the whole
    tree a random fraction of a second later; returns the attempt's run id."""
    wait_for(lambda: _dagster_answers(stack), 300, "Dagster after the restart", stack, 0.2)
    attempt = wait_for(lambda: _new_attempt(stack, seen), 300, f"an attempt ({moment})", stack, 0.2)
    steps = MOMENTS[moment]
    if steps:
        wait_for(
            lambda: any(
                stack.step_status(attempt["runId"]).get(step) == "IN_PROGRESS" for step in steps
            ),
            420,
            f"the attempt to reach {moment}",
            stack,
            0.2,
        )
    time.sleep(rng.uniform(0.0, 1.0))
    stack.crash()
    seen.add(attempt["runId"])
    return attempt["runId"]


def _settled(stack: RunningStack) -> bool:
    return not any(
        r["status"] in IN_FLIGHT for job in (RETRAIN_JOB, SCORING_JOB) for r in stack.runs(job)
    )


def test_drift_retrains_once_through_a_stop_and_crashes_and_serving_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The loop with real processes: stable traffic is left alone; drifted traffic triggers one
    retraining, which survives Ctrl-C one second after the sensor launched it and then a
    SIGKILL of the whole `churnops up` tree at three moments of its next attempts (each time
    `churnops up` again, no manual step). It completes exactly once, the gate promotes, serving
    and the scoring sensor follow, and nothing is left STARTED or RUNNING."""
    rng = random.Random(20)  # noqa: S311 - a reproducible moment, not a secret
    stack = start_stack(tmp_path, **SETTINGS)
    try:
        stack.log_in(monkeypatch)  # MLflow runs its auth app; the passwords stay the same
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
        root = wait_for(lambda: stack.runs(RETRAIN_JOB), 120, "the retraining run", stack, 0.2)[0]
        tags = _tags(root)
        assert tags["churnops/trigger"] == "drift_sensor"
        assert "features drifted" in tags["churnops/reason"]

        # Ctrl-C one second after the sensor launched it: a bounded wait, said on screen.
        time.sleep(1.0)
        assert stack.stop() == 0, stack.output()[-3000:]
        said = " ".join(stack.output().split())
        assert f"run {root['runId'][:8]} (retrain_on_drift, " in said
        assert "did not finish: it " in said and "on the next `churnops up`" in said
        # A run still queued starts on the next `up` (its first attempt); any other was left
        # in flight or failed by the stop, and what runs next is a retry of it.
        with open_instance(tmp_path / "state" / "dagster") as instance:
            queued = instance.get_run_by_id(root["runId"]).status == dg.DagsterRunStatus.QUEUED
        seen = set() if queued else {root["runId"]}
        for life, moment in enumerate(MOMENTS, start=2):
            stack = _restart(tmp_path, life, wait_up=False)
            _crash_at(stack, moment, seen, rng)
        stack = _restart(tmp_path, len(MOMENTS) + 2)
        assert "recovered: Dagster run" in stack.output()

        wait_for(
            lambda: next((r for r in stack.runs(RETRAIN_JOB) if r["status"] == "SUCCESS"), None),
            600,
            "the retraining to complete",
            stack,
        )
        attempts = stack.runs(RETRAIN_JOB)
        assert [r["status"] for r in attempts].count("SUCCESS") == 1
        assert {r["status"] for r in attempts} <= {"SUCCESS", "FAILURE"}
        assert all(
            _tags(r).get("dagster/root_run_id", root["runId"]) == root["runId"] for r in attempts
        ), "every attempt retries the one drift-triggered run"

        registry = MlflowModelRegistry(stack.mlflow, "churn", "churn-training")  # new port
        second = registry.champion().version
        assert second != first
        promoted = registry.version(second)
        assert promoted.tags["gate.decision"] == "promoted"
        # Registered by one attempt of this retraining: a retry re-executes only what failed,
        # so a crash while gating promotes the version the earlier attempt registered.
        assert promoted.tags["dagster.run_id"] in {r["runId"] for r in attempts}
        assert len(registry.versions()) <= 3, "at most one version per attempt that registered"
        mlflow = MlflowClient(stack.mlflow)
        reports = mlflow.search_runs(
            [mlflow.get_experiment_by_name("churn-monitoring").experiment_id],
            "attributes.status = 'FINISHED'",
        )
        assert reports and reports[0].data.metrics["psi.MonthlyCharges"] >= 0.2
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
        # The promotion moved @champion: the scoring sensor re-scores the base with it.
        rescored = wait_for(
            lambda: next(
                (
                    r
                    for r in stack.runs(SCORING_JOB)
                    if r["status"] == "SUCCESS"
                    and _tags(r)["churnops/reason"].endswith(f"to v{second}")
                ),
                None,
            ),
            300,
            "the scoring run of the new champion",
            stack,
        )
        scores = pd.read_parquet(_partition_file(tmp_path, _tags(rescored)))
        assert set(scores["model_version"]) == {second}
        assert len(scores) == 20_000 and scores["reason_1"].notna().mean() > 0.9

        # Nothing is left hanging: no Dagster run in flight, no MLflow run RUNNING.
        wait_for(lambda: _settled(stack), 300, "every run to settle", stack)
        experiments = [e.experiment_id for e in mlflow.search_experiments()]
        assert mlflow.search_runs(experiments, "attributes.status = 'RUNNING'") == []
        time.sleep(12)  # two more sensor intervals: the window must not trigger again
        assert [r["status"] for r in stack.runs(RETRAIN_JOB)].count("SUCCESS") == 1
        assert not any(r["status"] in IN_FLIGHT for r in stack.runs(RETRAIN_JOB))
        status = subprocess.run(  # noqa: S603 - our own CLI
            [str(BIN / "churnops"), "status", "--check", "--json"],
            env=stack.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert status.returncode == 0, status.stdout + status.stderr
        assert json.loads(status.stdout)["healthy"] is True
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
