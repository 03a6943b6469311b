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
from churnops.monitoring.binned import binned_reference, count_frame
from churnops.monitoring.drift import SCORE_COLUMN, DriftThresholds
from churnops.settings import Settings
from orchestration.assets.monitoring import drift_report
from orchestration.definitions import build_resources
from orchestration.jobs import retrain_on_drift
from orchestration.resources import InMemoryRegistryResource, memory_registry
from orchestration.sensors import (
    RunInFlight,
    WindowState,
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


REFERENCE = binned_reference(_frame(3000, 2), TELCO)


def _state(n: int, seed: int, drift: DriftSpec | None = None) -> WindowState:
    window = _frame(n, seed, drift)
    return WindowState(99.0, float(window["ts"].max()), "3", count_frame(REFERENCE.fields, window))


def _no_quality() -> dict[str, dict[str, float]]:
    raise AssertionError("live quality is read only for a full window")


def test_too_few_rows_keep_accumulating_without_reading_quality() -> None:
    state = _state(999, 1)
    outcome = assess_window(state, REFERENCE, _no_quality, T)
    assert not outcome.retrain and outcome.window is None
    assert outcome.state == state
    assert "999 new predictions; waiting for 1000" in outcome.reason


def test_stable_window_skips_and_starts_the_next_window_at_its_end() -> None:
    state = _state(1500, 1)
    outcome = assess_window(state, REFERENCE, dict, T)
    assert not outcome.retrain
    assert outcome.window == (99.0, state.scanned_ts)
    assert outcome.state == WindowState(state.scanned_ts, state.scanned_ts, "3")
    assert outcome.reason.startswith("vs champion v3: stable over 1500 predictions")


def test_drifted_window_requests_retraining() -> None:
    drift = DriftSpec(monthly_charges_shift=25, month_to_month_share_shift=-0.3)
    outcome = assess_window(_state(1500, 1, drift), REFERENCE, dict, T)
    assert outcome.retrain
    assert "features drifted" in outcome.reason


def test_poor_live_quality_of_a_full_window_retrains() -> None:
    quality = {"3": {"labels": 500.0, "roc_auc": 0.55, "brier": 0.3}}
    outcome = assess_window(_state(1500, 1), REFERENCE, lambda: quality, T)
    assert outcome.retrain and "live ROC AUC of v3 0.550" in outcome.reason


def test_the_cursor_carries_the_counts_and_reads_the_older_float_cursor() -> None:
    state = _state(1200, 1)
    assert WindowState.from_cursor(state.to_cursor()) == state
    assert WindowState.from_cursor("1234.5") == WindowState(1234.5, 1234.5)
    assert WindowState.from_cursor(None) == WindowState()
    assert len(state.to_cursor()) < 40_000  # O(bins), whatever the traffic


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
    assert skipped.skip_message == (
        "no champion to monitor yet; predictions up to 1299.000000 are not monitored"
    )
    # Traffic no champion can judge is passed over: the cursor moves.
    assert WindowState.from_cursor(ticks.cursor).scanned_ts == 1299.0
    version = ticks.crown_champion()
    assert ticks.tick().skip_message == "0 new predictions; waiting for 500 to fill a window"
    ticks.serve(300, seed=2)
    waiting = ticks.tick()
    assert waiting.skip_message == "300 new predictions; waiting for 500 to fill a window"
    state = WindowState.from_cursor(ticks.cursor)
    assert (state.since_ts, state.scanned_ts, state.rows) == (1299.0, 1599.0, 300)
    end = ticks.serve(300, seed=3)  # only these are counted on the next tick
    full = ticks.tick()
    assert full.skip_message.startswith(f"vs champion v{version}: stable over 600 predictions")
    assert WindowState.from_cursor(ticks.cursor) == WindowState(end, end, version)


def test_sensor_advances_over_a_stable_window_and_requests_one_run_per_drifted_one() -> None:
    ticks = Ticks(min_rows=500)
    version = ticks.crown_champion()
    stable_end = ticks.serve(1500, seed=1)
    stable = ticks.tick()
    assert isinstance(stable, dg.SkipReason)
    assert stable.skip_message.startswith(f"vs champion v{version}: stable over 1500 predictions")
    assert WindowState.from_cursor(ticks.cursor).since_ts == stable_end

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
    assert WindowState.from_cursor(ticks.cursor).since_ts == drifted_end
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


def test_drift_report_judges_the_window_the_sensor_requested_from_its_counts() -> None:
    ticks = Ticks(min_rows=500)
    ticks.crown_champion()
    stable_end = ticks.serve(800, seed=1)
    ticks.tick()
    ticks.serve(1500, seed=3, drift=DRIFT)
    request = ticks.tick()
    assert isinstance(request, dg.RunRequest)
    result = dg.materialize(
        [drift_report], resources=ticks.resources, run_config=request.run_config
    )
    metadata = result.asset_materializations_for_node("drift_report")[0].metadata
    assert metadata["rows"].value == 1500
    assert metadata["retrain"].value is True
    assert "MonthlyCharges" in metadata["drifted_features"].value
    assert stable_end < request.run_config["ops"]["drift_report"]["config"]["until_ts"]
