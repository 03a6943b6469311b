"""The live comparison's statistics on known cases and simulated data, and the live gate's
rule (lower bound of the paired AUC difference against the margin)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from churnops.monitoring.live_comparison import compare_live, reliability
from churnops.monitoring.live_gate import LiveGateRules, judge_live

pytestmark = pytest.mark.unit


def _compare(y, champion, challenger, confidence=0.9):
    return compare_live(
        np.asarray(y),
        np.asarray(champion),
        np.asarray(challenger),
        champion_version="1",
        challenger_version="2",
        confidence=confidence,
    )


def _population(rows: int, rng: np.random.Generator):
    """Churn driven by a latent risk; the challenger sees it with less noise than the champion."""
    risk = rng.normal(size=rows)
    y = (rng.random(rows) < 1 / (1 + np.exp(-(2 * risk - 1)))).astype(int)
    champion = 1 / (1 + np.exp(-(risk + rng.normal(scale=1.0, size=rows))))
    challenger = 1 / (1 + np.exp(-(risk + rng.normal(scale=0.5, size=rows))))
    return y, champion, challenger


def test_known_case_gives_each_auc_and_their_difference() -> None:
    y = [0, 0, 1, 1]
    result = _compare(y, [0.1, 0.4, 0.35, 0.8], [0.1, 0.2, 0.3, 0.4])
    assert result.champion.auc == pytest.approx(0.75)
    assert result.challenger.auc == pytest.approx(1.0)
    assert result.auc_diff.diff == pytest.approx(0.25)
    assert result.auc_diff.ci_low < 0.25 < result.auc_diff.ci_high
    assert result.champion.brier == pytest.approx(
        np.mean((np.array([0.1, 0.4, 0.35, 0.8]) - y) ** 2)
    )
    assert (result.labelled, result.churners) == (4, 2)


def test_identical_models_differ_by_exactly_zero() -> None:
    y, scores, _ = _population(500, np.random.default_rng(1))
    result = _compare(y, scores, scores.copy())
    assert result.champion.auc == result.challenger.auc == pytest.approx(roc_auc_score(y, scores))
    for difference in (result.auc_diff, result.brier_diff):
        assert (difference.diff, difference.ci_low, difference.ci_high) == (0.0, 0.0, 0.0)
    assert result.champion.ece == result.challenger.ece


def test_the_paired_auc_interval_covers_the_true_difference_at_its_level() -> None:
    rng = np.random.default_rng(7)
    y, champion, challenger = _population(300_000, rng)
    truth = roc_auc_score(y, challenger) - roc_auc_score(y, champion)
    assert truth > 0.02  # the challenger is really better
    covered, trials = 0, 300
    for _ in range(trials):
        rows = rng.choice(len(y), size=400, replace=False)
        result = _compare(y[rows], champion[rows], challenger[rows], confidence=0.9)
        covered += result.auc_diff.ci_low <= truth <= result.auc_diff.ci_high
    assert 0.85 <= covered / trials <= 0.95, covered / trials


def test_a_better_calibrated_challenger_has_a_negative_brier_difference() -> None:
    rng = np.random.default_rng(3)
    truth = rng.random(2_000)
    y = (rng.random(2_000) < truth).astype(int)
    overconfident = np.where(truth > 0.5, 0.99, 0.01)
    result = _compare(y, overconfident, truth)
    assert result.brier_diff.diff < 0 and result.brier_diff.ci_high < 0
    assert result.challenger.ece < 0.03 < result.champion.ece
    swapped = _compare(y, truth, overconfident)
    assert swapped.brier_diff.diff == pytest.approx(-result.brier_diff.diff)


def test_expected_calibration_error_of_a_constant_score() -> None:
    ece, bins = reliability(np.array([0, 1, 0, 1]), np.array([0.8, 0.8, 0.8, 0.8]))
    assert ece == pytest.approx(0.3)
    assert [b.count for b in bins] == [0] * 8 + [4, 0]
    assert bins[8].mean_score == pytest.approx(0.8) and bins[8].churn_rate == 0.5
    assert bins[0].mean_score is None


def test_one_churner_gives_no_auc_interval_but_a_brier_one() -> None:
    result = _compare([0, 0, 0, 1], [0.1, 0.2, 0.3, 0.4], [0.4, 0.3, 0.2, 0.1])
    assert result.auc_diff is None and result.champion.auc is None
    assert result.brier_diff is not None
    assert "n/a" in result.to_markdown()
    assert "auc_diff" not in result.metrics() and "brier_diff" in result.metrics()
    json.loads(result.to_json())  # empty bins are null, not NaN


def test_no_pairs_is_an_error() -> None:
    with pytest.raises(ValueError, match="no labelled paired requests"):
        _compare([], [], [])


RULES = LiveGateRules(min_labelled=300, margin=0.02, alpha=0.05)


def test_the_live_gate_waits_for_enough_labelled_pairs() -> None:
    y, champion, challenger = _population(299, np.random.default_rng(5))
    verdict = judge_live(_compare(y, champion, challenger), RULES)
    assert verdict.decision == "wait" and "299 labelled paired requests" in verdict.reason
    assert judge_live(None, RULES).decision == "wait"


def test_the_live_gate_promotes_a_challenger_no_worse_than_the_margin() -> None:
    y, champion, challenger = _population(600, np.random.default_rng(5))
    comparison = _compare(y, champion, challenger)
    verdict = judge_live(comparison, RULES)
    assert verdict.decision == "promote", verdict.reason
    assert f"lower bound {comparison.auc_diff.ci_low:+.4f} >= -0.02" in verdict.reason
    equal = judge_live(_compare(y, champion, champion.copy()), RULES)
    assert equal.decision == "promote"  # non-inferiority: as good is good enough


def test_the_live_gate_rejects_a_challenger_that_may_be_worse() -> None:
    y, champion, challenger = _population(600, np.random.default_rng(5))
    verdict = judge_live(_compare(y, challenger, champion), RULES)  # roles swapped: worse
    assert verdict.decision == "reject", verdict.reason
    assert "may be worse by more than 0.02 AUC" in verdict.reason
