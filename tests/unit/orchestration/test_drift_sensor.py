"""The drift sensor's decision as a pure function, and the sensor against an instance."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from churnops.contract import parse_contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.monitoring import prediction_store
from churnops.monitoring.drift import SCORE_COLUMN, DriftThresholds
from churnops.settings import Settings
from orchestration.definitions import build_resources
from orchestration.jobs import retrain_on_drift
from orchestration.resources import InMemoryRegistryResource, memory_registry
from orchestration.sensors import (
    RunInFlight,
    assess_window,
    build_drift_sensor,
    in_flight_verdict,
)

pytestmark = pytest.mark.unit

T = DriftThresholds.from_settings(Settings(monitor_min_rows=1000))
TELCO = telco_contract()
TARGET = TELCO.target.name


def _frame(n: int, seed: int, drift: DriftSpec | None = None):
    raw = generate_customers(n, seed=seed, drift=drift)
    frame = clean_customers(raw, "synthetic", TELCO).frame
    frame[SCORE_COLUMN] = np.random.default_rng(seed).uniform(0, 1, n)
    frame["model_version"] = "3"
    frame[TARGET] = None  # unlabelled traffic: no live quality to judge
    frame["ts"] = np.arange(n, dtype=float) + 100.0
    return frame


def test_without_a_champion_the_sensor_waits() -> None:
    outcome = assess_window(_frame(2000, 1), None, None, T, TELCO)
    assert not outcome.retrain and outcome.cursor is None
    assert "no champion" in outcome.reason


def test_too_few_rows_keep_accumulating_without_moving_the_cursor() -> None:
    outcome = assess_window(_frame(999, 1), _frame(3000, 2), "3", T, TELCO)
    assert not outcome.retrain and outcome.cursor is None
    assert "999 new predictions; waiting for 1000" in outcome.reason


def test_a_champion_without_a_training_reference_is_not_judged() -> None:
    outcome = assess_window(_frame(1500, 1), None, "3", T, TELCO)
    assert not outcome.retrain and outcome.cursor is None
    assert outcome.reason == "champion v3 has no training reference"


def test_stable_window_skips_and_advances_the_cursor() -> None:
    window = _frame(1500, 1)
    outcome = assess_window(window, _frame(3000, 2), "3", T, TELCO)
    assert not outcome.retrain
    assert outcome.cursor == window["ts"].max()
    assert outcome.reason.startswith("vs champion v3: stable over 1500 predictions")


def test_drifted_window_requests_retraining() -> None:
    drift = DriftSpec(monthly_charges_shift=25, month_to_month_share_shift=-0.3)
    window = _frame(1500, 1, drift)
    outcome = assess_window(window, _frame(3000, 2), "3", T, TELCO)
    assert outcome.retrain
    assert outcome.cursor == window["ts"].max()
    assert "features drifted" in outcome.reason


# The sensor itself, tick by tick: an ephemeral instance, the in-memory registry and an
# in-memory SQLite prediction store shared by name.

SENSOR = build_drift_sensor(retrain_on_drift, interval_seconds=30)
DRIFT = DriftSpec(monthly_charges_shift=25, month_to_month_share_shift=-0.3)


class Ticks:
    """One sensor under test: its resources, its store and the cursor carried between ticks."""

    def __init__(self, min_rows: int, retrain_timeout_seconds: float = 3600.0) -> None:
        name = uuid.uuid4().hex
        url = f"sqlite:///file:{name}?mode=memory&cache=shared&uri=true"
        # This engine keeps the shared in-memory database alive for the sensor's engines.
        self.engine = prediction_store.connect(url, TELCO)
        settings = Settings(
            prediction_store_url=url,
            monitor_min_rows=min_rows,
            retrain_timeout_seconds=retrain_timeout_seconds,
        )
        resources = build_resources(settings)
        self.registry = memory_registry(name, "churn", "training")
        self.resources = {
            "prediction_store": resources["prediction_store"],
            "monitor_policy": resources["monitor_policy"],
            "contract": resources["contract"],
            "model_registry": InMemoryRegistryResource(
                namespace=name, model_name="churn", experiment="training"
            ),
        }
        self.instance = dg.DagsterInstance.ephemeral()
        self.cursor: str | None = None
        self.next_ts = 1_000.0

    def crown_champion(self, contract=TELCO) -> str:
        """A champion (trained on `contract`) whose training reference is undrifted customers."""
        model = object()
        logged = self.registry.log_candidate("candidate", model, {}, {}, contract=contract)  # type: ignore[arg-type]
        reference = _frame(3000, 2).loc[:, [*TELCO.feature_names, SCORE_COLUMN]]
        self.registry.log_reference(logged.run_id, reference)
        version = self.registry.register(logged, {})
        self.registry.promote(version, "test")
        return version

    def serve(self, rows: int, seed: int, drift: DriftSpec | None = None) -> float:
        """Log `rows` predictions one second apart; returns the last one's time."""
        customers = generate_customers(rows, seed=seed, drift=drift)
        logged = customers.drop(columns=[TARGET]).astype(
            {c: str for c in customers.select_dtypes("category").columns if c != TARGET}
        )
        logged.insert(0, "request_id", [f"{seed}-{i}-{self.next_ts}" for i in range(rows)])
        logged.insert(1, "ts", self.next_ts + np.arange(rows, dtype=float))
        logged.insert(2, "model_version", "1")
        logged[SCORE_COLUMN] = np.random.default_rng(seed).uniform(0, 1, rows)
        logged["churn"] = np.where(logged[SCORE_COLUMN] >= 0.5, "Yes", "No")
        records = logged.astype(object).where(pd.notna(logged), None).to_dict("records")
        prediction_store.write_predictions(self.engine, TELCO, records)
        self.next_ts += rows
        return self.next_ts - 1

    def tick(self) -> dg.SkipReason | dg.RunRequest:
        context = dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        )
        result = SENSOR(context)
        self.cursor = context.cursor
        return result


def test_sensor_waits_for_a_champion_then_for_a_full_window() -> None:
    ticks = Ticks(min_rows=500)
    ticks.serve(300, seed=1)
    skipped = ticks.tick()
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message == "no champion to monitor yet"
    assert ticks.cursor is None
    version = ticks.crown_champion()
    waiting = ticks.tick()
    assert waiting.skip_message == "300 new predictions; waiting for 500 to fill a window"
    assert ticks.cursor is None
    end = ticks.serve(300, seed=2)  # the rows logged before the champion existed still count
    full = ticks.tick()
    assert full.skip_message.startswith(f"vs champion v{version}: stable over 600 predictions")
    assert float(ticks.cursor) == end


def test_sensor_advances_over_a_stable_window_and_requests_one_run_per_drifted_one() -> None:
    ticks = Ticks(min_rows=500)
    version = ticks.crown_champion()
    stable_end = ticks.serve(1500, seed=1)
    stable = ticks.tick()
    assert isinstance(stable, dg.SkipReason)
    assert stable.skip_message.startswith(f"vs champion v{version}: stable over 1500 predictions")
    assert float(ticks.cursor) == stable_end

    drifted_end = ticks.serve(1500, seed=3, drift=DRIFT)
    request = ticks.tick()
    assert isinstance(request, dg.RunRequest)
    assert request.run_key == f"drift-window-{stable_end:.6f}-{drifted_end:.6f}"
    assert request.run_config == {
        "ops": {"drift_report": {"config": {"since_ts": stable_end, "until_ts": drifted_end}}}
    }
    assert request.tags["churnops/trigger"] == "drift_sensor"
    assert request.tags["churnops/reason"].startswith(f"vs champion v{version}: ")
    assert "features drifted" in request.tags["churnops/reason"]
    assert float(ticks.cursor) == drifted_end
    quiet = ticks.tick()  # nothing new since the cursor
    assert quiet.skip_message.startswith("0 new predictions")


def test_sensor_skips_while_a_retraining_run_is_in_progress() -> None:
    ticks = Ticks(min_rows=500)
    ticks.crown_champion()
    ticks.serve(1500, seed=3, drift=DRIFT)
    run = dg.DagsterRun(job_name=retrain_on_drift.name, status=dg.DagsterRunStatus.STARTED)
    ticks.instance.add_run(run)
    skipped = ticks.tick()
    assert skipped.skip_message.startswith(f"waiting for retraining run {run.run_id} (STARTED")
    assert "holds new windows back for at most 3600 s" in skipped.skip_message
    assert ticks.cursor is None


def test_a_retraining_run_stuck_past_its_timeout_no_longer_blocks() -> None:
    """A run a crash left STARTED must not stop monitoring for good."""
    now = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
    fresh = RunInFlight("fresh", "STARTING", now - timedelta(seconds=30))
    stuck = RunInFlight("stuck", "STARTED", now - timedelta(hours=3))
    waiting, note = in_flight_verdict([stuck, fresh], now, 3600)
    assert waiting.startswith(
        "waiting for retraining run fresh (STARTING since 2026-11-27T11:59:30"
    )
    waiting, note = in_flight_verdict([stuck], now, 3600)
    assert waiting is None
    assert note == (
        "; not waiting for retraining run stuck (STARTED since 2026-11-27T09:00:00+00:00, over "
        "the 3600 s timeout)"
    )


def test_sensor_evaluates_windows_past_a_stuck_run_and_says_so() -> None:
    ticks = Ticks(min_rows=500, retrain_timeout_seconds=1)
    ticks.crown_champion()
    ticks.serve(1500, seed=3, drift=DRIFT)
    run = dg.DagsterRun(job_name=retrain_on_drift.name, status=dg.DagsterRunStatus.STARTED)
    ticks.instance.add_run(run)
    time.sleep(1.5)
    request = ticks.tick()
    assert isinstance(request, dg.RunRequest)
    assert (
        f"not waiting for retraining run {run.run_id} (STARTED" in request.tags["churnops/reason"]
    )


def test_sensor_does_not_monitor_a_champion_of_another_contract() -> None:
    """Serving refuses such a champion, so its reference says nothing about this traffic."""
    raw = TELCO.model_dump(mode="json", exclude_defaults=True)
    other = parse_contract({**raw, "dataset": "elsewhere", "id_column": None}, "test")
    ticks = Ticks(min_rows=500)
    version = ticks.crown_champion(other)
    ticks.serve(600, seed=1)
    skipped = ticks.tick()
    assert isinstance(skipped, dg.SkipReason)
    assert skipped.skip_message.startswith(
        f"not monitoring: champion v{version} was trained on contract elsewhere"
    )
    assert ticks.cursor is None
