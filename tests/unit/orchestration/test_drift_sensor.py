"""The drift sensor's decision as a pure function, and the sensor against an instance."""

from __future__ import annotations

import numpy as np
import pytest

from churnops.contract import TARGET_COLUMN
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.monitoring.drift import SCORE_COLUMN, DriftThresholds
from orchestration.sensors import assess_window

pytestmark = pytest.mark.unit

T = DriftThresholds(min_rows=1000)


def _frame(n: int, seed: int, drift: DriftSpec | None = None):
    frame = clean_customers(generate_customers(n, seed=seed, drift=drift), "synthetic").frame
    frame[SCORE_COLUMN] = np.random.default_rng(seed).uniform(0, 1, n)
    frame["model_version"] = "3"
    frame[TARGET_COLUMN] = None  # unlabelled traffic: no live quality to judge
    frame["ts"] = np.arange(n, dtype=float) + 100.0
    return frame


def test_without_a_champion_the_sensor_waits() -> None:
    outcome = assess_window(_frame(2000, 1), None, None, T)
    assert not outcome.retrain and outcome.cursor is None
    assert "no champion" in outcome.reason


def test_too_few_rows_keep_accumulating_without_moving_the_cursor() -> None:
    outcome = assess_window(_frame(999, 1), _frame(3000, 2), "3", T)
    assert not outcome.retrain and outcome.cursor is None
    assert "999 new predictions; waiting for 1000" in outcome.reason


def test_stable_window_skips_and_advances_the_cursor() -> None:
    window = _frame(1500, 1)
    outcome = assess_window(window, _frame(3000, 2), "3", T)
    assert not outcome.retrain
    assert outcome.cursor == window["ts"].max()
    assert outcome.reason.startswith("vs champion v3: stable over 1500 predictions")


def test_drifted_window_requests_retraining() -> None:
    drift = DriftSpec(monthly_charges_shift=25, month_to_month_share_shift=-0.3)
    window = _frame(1500, 1, drift)
    outcome = assess_window(window, _frame(3000, 2), "3", T)
    assert outcome.retrain
    assert outcome.cursor == window["ts"].max()
    assert "features drifted" in outcome.reason
