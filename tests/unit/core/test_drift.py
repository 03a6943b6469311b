"""Drift statistics against known distributions, and the retrain decision; features and kinds
come from the data contract (booleans and open categories included)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import DriftSpec, generate_customers
from churnops.monitoring.drift import (
    SCORE_COLUMN,
    DriftThresholds,
    build_report,
    categorical_drift,
    decide_retrain,
    feature_drift,
    live_quality,
    numeric_drift,
    psi,
)
from churnops.settings import Settings
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

T = DriftThresholds.from_settings(Settings())
TELCO = telco_contract()
TARGET_COLUMN = TELCO.target.name


def test_psi_is_zero_for_identical_and_grows_with_shift() -> None:
    same = np.array([0.25, 0.25, 0.25, 0.25])
    assert psi(same, same) == pytest.approx(0.0)
    small = psi(same, np.array([0.3, 0.25, 0.25, 0.2]))
    large = psi(same, np.array([0.7, 0.1, 0.1, 0.1]))
    assert 0 < small < 0.1 < 0.2 < large


def test_numeric_samples_from_one_distribution_do_not_drift() -> None:
    rng = np.random.default_rng(0)
    result = numeric_drift("x", rng.normal(0, 1, 5000), rng.normal(0, 1, 5000), T)
    assert not result.drifted
    assert result.psi < 0.05 and result.p_value > 0.01


def test_shifted_numeric_distribution_drifts_with_ks() -> None:
    rng = np.random.default_rng(0)
    result = numeric_drift("x", rng.normal(0, 1, 5000), rng.normal(1.0, 1, 5000), T)
    assert result.drifted and result.test == "ks"
    assert result.psi > 0.2 and result.p_value < 1e-6


def test_small_but_significant_shift_is_not_drift() -> None:
    """Large samples make a tiny shift significant; PSI keeps it from counting as drift."""
    rng = np.random.default_rng(1)
    result = numeric_drift("x", rng.normal(0, 1, 200_000), rng.normal(0.05, 1, 200_000), T)
    assert result.p_value < 0.01 and not result.drifted


def test_categorical_mix_change_drifts_with_chi_square() -> None:
    cats = ("a", "b", "c")
    ref = pd.Series(np.repeat(["a", "b", "c"], [500, 300, 200]))
    same = pd.Series(np.repeat(["a", "b", "c"], [490, 310, 200]))
    moved = pd.Series(np.repeat(["a", "b", "c"], [150, 300, 550]))
    assert not categorical_drift("c", ref, same, cats, T).drifted
    result = categorical_drift("c", ref, moved, cats, T)
    assert result.drifted and result.test == "chi2"


def test_nan_values_are_ignored_by_numeric_drift() -> None:
    ref = np.array([1.0, 2.0, np.nan, 3.0] * 500)
    cur = np.array([1.0, np.nan, 2.0, 3.0] * 500)
    assert not numeric_drift("TotalCharges", ref, cur, T).drifted


def test_values_outside_the_categories_count_as_drift() -> None:
    ref = pd.Series(np.repeat(["a", "b"], [500, 500]))
    unknown = pd.Series(np.repeat(["a", "b", "zzz"], [200, 200, 600]))
    result = categorical_drift("c", ref, unknown, ("a", "b"), T)
    assert result.drifted


def test_booleans_are_judged_as_two_categories() -> None:
    feature = GYM.by_name["has pass"]
    ref = pd.Series(np.repeat([1.0, 0.0], [500, 500]))
    same = pd.Series(np.repeat([1.0, 0.0, np.nan], [480, 500, 20]))
    flipped = pd.Series(np.repeat([1.0, 0.0], [900, 100]))
    assert feature_drift(feature, ref, same, T).test == "chi2"
    assert not feature_drift(feature, ref, same, T).drifted
    assert feature_drift(feature, ref, flipped, T).drifted


def test_open_categories_are_compared_on_the_values_observed() -> None:
    feature = GYM.by_name["club"]
    clubs = [f"club-{i}" for i in range(20)]
    rng = np.random.default_rng(4)
    ref = pd.Series(pd.Categorical(rng.choice(clubs, 4000)))
    same = pd.Series(rng.choice(clubs, 3000))
    moved = pd.Series(rng.choice([*clubs[:3], "a new club"], 3000))
    assert not feature_drift(feature, ref, same, T).drifted
    assert feature_drift(feature, ref, moved, T).drifted


def _window(n: int, seed: int, drift: DriftSpec | None = None) -> pd.DataFrame:
    frame = generate_customers(n, seed=seed, drift=drift)
    frame = clean_customers(frame, "synthetic", TELCO).frame
    rng = np.random.default_rng(seed)
    frame[SCORE_COLUMN] = rng.uniform(0, 1, n)
    frame["model_version"] = "1"
    frame[TARGET_COLUMN] = None  # unlabelled traffic: no live quality to judge
    return frame


def test_stable_window_does_not_retrain_and_says_why() -> None:
    report = build_report(_window(4000, 1), _window(3000, 2), T, TELCO)
    decision = decide_retrain(report, T)
    assert not decision.retrain
    assert decision.reason.startswith("stable over 3000 predictions")
    assert report.drift_share < T.drift_share


def test_shifted_population_retrains_naming_the_features() -> None:
    drift = DriftSpec(monthly_charges_shift=20, month_to_month_share_shift=-0.3)
    report = build_report(_window(4000, 1), _window(3000, 2, drift), T, TELCO)
    decision = decide_retrain(report, T)
    assert decision.retrain
    assert {"MonthlyCharges", "Contract"} <= set(report.drifted_features)
    assert "MonthlyCharges" in decision.reason


def test_live_quality_per_version_needs_enough_labels() -> None:
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 600)
    window = pd.DataFrame(
        {
            "model_version": ["1"] * 300 + ["2"] * 300,
            SCORE_COLUMN: np.clip(y * 0.6 + rng.uniform(0, 0.4, 600), 0, 1),
            TARGET_COLUMN: np.where(y == 1, "Yes", "No"),
        }
    )
    window.loc[:149, TARGET_COLUMN] = None  # only 150 labels for version 1
    window.loc[150:155, TARGET_COLUMN] = "yes"  # any spelling the target accepts counts
    quality = live_quality(window, 200, TELCO)
    assert quality["1"] == {"labels": 150.0}
    assert quality["2"]["labels"] == 300.0
    assert quality["2"]["roc_auc"] > 0.95
    assert 0.0 <= quality["2"]["brier"] < 0.25


def test_poor_live_auc_alone_triggers_retraining() -> None:
    report = build_report(_window(4000, 1), _window(3000, 2), T, TELCO)
    degraded = dataclasses.replace(
        report, quality={"1": {"labels": 500.0, "roc_auc": 0.55, "brier": 0.3}}
    )
    decision = decide_retrain(degraded, T)
    assert decision.retrain
    assert "live ROC AUC of v1 0.550 < 0.7" in decision.reason


def test_thresholds_have_no_defaults_and_come_whole_from_settings() -> None:
    fields = dataclasses.fields(DriftThresholds)
    assert all(f.default is dataclasses.MISSING for f in fields)
    settings = Settings(
        drift_psi=0.31,
        drift_p_value=0.02,
        drift_share=0.25,
        drift_score_psi=0.41,
        monitor_min_rows=77,
        drift_min_labels=33,
        drift_min_live_auc=0.61,
    )
    assert DriftThresholds.from_settings(settings) == DriftThresholds(
        psi=0.31,
        p_value=0.02,
        drift_share=0.25,
        score_psi=0.41,
        min_rows=77,
        min_labels=33,
        min_live_auc=0.61,
    )


def test_report_carries_the_thresholds_it_was_judged_by() -> None:
    strict = dataclasses.replace(T, psi=0.05)
    assert build_report(_window(2000, 1), _window(1000, 2), strict, TELCO).thresholds == strict


def test_min_labels_setting_decides_when_live_auc_is_judged() -> None:
    reference = _window(4000, 1)
    window = _window(3000, 2)
    window[TARGET_COLUMN] = np.where(np.arange(len(window)) % 2, "Yes", "No")
    window.loc[300:, TARGET_COLUMN] = None  # 300 labels
    few = DriftThresholds.from_settings(Settings(drift_min_labels=301))
    enough = DriftThresholds.from_settings(Settings(drift_min_labels=300))
    assert "roc_auc" not in build_report(reference, window, few, TELCO).quality["1"]
    assert "roc_auc" in build_report(reference, window, enough, TELCO).quality["1"]


def test_score_psi_setting_decides_when_score_drift_retrains() -> None:
    window = _window(3000, 2)
    window[SCORE_COLUMN] = window[SCORE_COLUMN] ** 2  # the model's output moved, features did not
    report = build_report(_window(4000, 1), window, T, TELCO)
    measured = report.score.psi
    lenient = DriftThresholds.from_settings(Settings(drift_score_psi=measured * 1.1))
    strict = DriftThresholds.from_settings(Settings(drift_score_psi=measured * 0.9))
    assert not decide_retrain(report, lenient).retrain
    assert decide_retrain(report, strict).reason.startswith("score PSI")
