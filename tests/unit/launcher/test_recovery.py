"""Runs a crash left in flight are failed so run retries re-execute them, MLflow runs their dead
step left RUNNING are ended, and `churnops status --check` calls stuck monitoring stuck."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
import yaml

from churnops.contract import telco_contract
from launcher.monitoring_status import MonitoringFacts, RunFacts, SensorFacts, problems
from launcher.recovery import (
    end_orphan_mlflow_runs,
    fail_orphans,
    open_instance,
    runs_in_flight,
    wait_for_runs,
)
from launcher.stack import DAGSTER_INSTANCE_YAML, INSTANCE_MARKER, write_instance_yaml
from registry.interface import FAILURE_TAG
from registry.memory import InMemoryModelRegistry

pytestmark = pytest.mark.unit


@pytest.fixture
def instance(tmp_path: Path):
    write_instance_yaml(tmp_path / "dagster.yaml")
    with open_instance(tmp_path) as opened:
        yield opened


def _run(instance: dg.DagsterInstance, status: dg.DagsterRunStatus, job: str = "retrain_on_drift"):
    run = dg.DagsterRun(job_name=job, status=status, tags={"dagster/max_retries": "3"})
    instance.add_run(run)
    return run


def test_the_instance_we_write_monitors_runs_and_retries_lost_ones(tmp_path: Path) -> None:
    config = yaml.safe_load(DAGSTER_INSTANCE_YAML)
    assert config["run_monitoring"]["enabled"] is True
    assert config["run_monitoring"]["max_resume_run_attempts"] == 0  # the local launcher cannot
    assert config["run_retries"] == {
        "enabled": True,
        "max_retries": 0,
        "retry_on_asset_or_op_failure": False,
    }
    assert write_instance_yaml(tmp_path / "dagster.yaml")
    with open_instance(tmp_path) as instance:
        assert instance.run_monitoring_enabled and instance.run_retries_enabled


def test_an_older_instance_file_of_ours_is_rewritten_and_a_users_is_kept(tmp_path: Path) -> None:
    ours = tmp_path / "ours.yaml"
    ours.write_text(f"{INSTANCE_MARKER}; old\ntelemetry:\n  enabled: false\n")
    assert write_instance_yaml(ours) and "run_monitoring" in ours.read_text()
    theirs = tmp_path / "theirs.yaml"
    theirs.write_text("telemetry:\n  enabled: true\n")
    assert not write_instance_yaml(theirs)
    assert theirs.read_text() == "telemetry:\n  enabled: true\n"


def test_runs_left_in_flight_are_failed_for_retry_and_finished_ones_kept(instance) -> None:
    started = _run(instance, dg.DagsterRunStatus.STARTED)
    starting = _run(instance, dg.DagsterRunStatus.STARTING, "score_customers")
    done = _run(instance, dg.DagsterRunStatus.SUCCESS)
    orphans = runs_in_flight(instance)
    assert {o.run_id for o in orphans} == {started.run_id, starting.run_id}
    failed = fail_orphans(instance, orphans, "test")
    assert {f.run_id for f in failed} == {started.run_id, starting.run_id}
    for run in (started, starting):
        after = instance.get_run_by_id(run.run_id)
        assert after.status == dg.DagsterRunStatus.FAILURE
        assert after.tags.get("dagster/will_retry") == "true"
    assert instance.get_run_by_id(done.run_id).status == dg.DagsterRunStatus.SUCCESS
    # A second pass (or a run that finished meanwhile) changes nothing.
    assert fail_orphans(instance, orphans, "test") == []


def test_mlflow_runs_of_dead_steps_are_ended_and_live_ones_kept(instance) -> None:
    registry = InMemoryModelRegistry("churn", "training")
    dead = _run(instance, dg.DagsterRunStatus.FAILURE)
    live = _run(instance, dg.DagsterRunStatus.STARTED)
    logged = {}
    for name, tags in {
        "dead": {"dagster.run_id": dead.run_id},
        "live": {"dagster.run_id": live.run_id},
        "unknown": {"dagster.run_id": "no-such-run"},
        "foreign": {},
    }.items():
        run = registry.log_candidate(name, object(), {}, tags, contract=telco_contract())  # type: ignore[arg-type]
        registry.runs[run.run_id].status = "RUNNING"
        logged[name] = run.run_id
    ended = end_orphan_mlflow_runs(registry, instance)
    assert sorted(ended) == sorted([logged["dead"], logged["unknown"]])
    assert registry.runs[logged["dead"]].status == "FAILED"
    assert "FAILURE" in registry.runs[logged["dead"]].tags[FAILURE_TAG]
    assert registry.runs[logged["live"]].status == "RUNNING"
    assert registry.runs[logged["foreign"]].status == "RUNNING"


def test_a_stop_waits_for_runs_in_flight_at_most_the_grace_and_says_which(instance) -> None:
    _run(instance, dg.DagsterRunStatus.STARTED)
    said = []
    began = time.monotonic()
    left = wait_for_runs(instance, 1.5, lambda: False, lambda running, _: said.append(running))
    assert 1.4 < time.monotonic() - began < 5
    assert len(left) == 1 and said and said[0][0].job == "retrain_on_drift"
    assert wait_for_runs(instance, 30, lambda: True, lambda *_: None) == left  # Ctrl-C again


NOW = 1_800_000_000.0


def _healthy(**changes) -> MonitoringFacts:
    facts = MonitoringFacts(
        reachable=True,
        sensors=[SensorFacts("drift_sensor", "RUNNING", NOW - 10, "SKIPPED", "stable")],
        daemon_heartbeats={"SENSOR": NOW - 5, "SCHEDULER": NOW - 40},
        interval_seconds=30,
        retrain_timeout_seconds=3600,
    )
    for key, value in changes.items():
        setattr(facts, key, value)
    return facts


def test_healthy_monitoring_has_no_problems() -> None:
    assert problems(_healthy(), NOW) == []


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"reachable": False}, "does not answer"),
        ({"daemon_heartbeats": {"SENSOR": NOW - 600}}, "daemon is not ticking sensors"),
        ({"sensors": [SensorFacts("drift_sensor", "STOPPED", None, None, None)]}, "is STOPPED"),
        (
            {"sensors": [SensorFacts("drift_sensor", "RUNNING", NOW - 900, "SKIPPED", "x")]},
            "has not ticked since",
        ),
        (
            {"sensors": [SensorFacts("drift_sensor", "RUNNING", NOW - 5, "FAILURE", "boom")]},
            "last tick failed: boom",
        ),
        (
            {"in_flight": [RunFacts("r1", "retrain_on_drift", "STARTED", NOW - 7200, None, None)]},
            "retraining run r1 is stuck STARTED",
        ),
        (
            {"in_flight": [RunFacts("r2", "score_customers", "STARTING", NOW - 600, None, None)]},
            "is stuck STARTING",
        ),
    ],
)
def test_stuck_monitoring_is_named(changes: dict, expected: str) -> None:
    found = problems(_healthy(**changes), NOW)
    assert len(found) == 1 and expected in found[0]


def test_a_retraining_run_within_its_timeout_is_not_stuck() -> None:
    running = [RunFacts("r", "retrain_on_drift", "STARTED", NOW - 600, NOW - 590, None)]
    assert problems(_healthy(in_flight=running), NOW) == []
