"""The promotion gate: DeLong's paired test, slice rules, the decision and its report."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnops.contract import telco_contract
from churnops.model.gate import GateRules, delong_test, judge_challenger, roc_auc
from churnops.model.slices import SliceSpec

pytestmark = pytest.mark.unit
TELCO = telco_contract()

RULES = GateRules(min_auc=0.6, margin=0.002, alpha=0.05)


def _labels(rows: int, seed: int, churn_rate: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(seed).uniform(size=rows) < churn_rate).astype(np.int8)


def _scores(y: np.ndarray, noise: float, seed: int) -> np.ndarray:
    """A model whose scores separate the classes less the noisier it is."""
    return y + np.random.default_rng(seed).normal(0, noise, len(y))


def _holdout(y: np.ndarray, **columns: object) -> pd.DataFrame:
    return pd.DataFrame({TELCO.target.name: y.astype(np.int8), **columns})


def test_auc_matches_sklearn_with_ties() -> None:
    y = _labels(500, 1)
    scores = np.round(_scores(y, 1.0, 2), 1)  # rounding makes many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)


def test_identical_scores_differ_by_exactly_nothing() -> None:
    y = _labels(400, 3)
    scores = _scores(y, 1.0, 4)
    result = delong_test(y, scores, scores.copy(), margin=0.002, alpha=0.05)
    assert result.diff == 0 and result.std_error == 0
    assert result.p_value == 1.0
    assert result.ci_low == result.ci_high == 0


def test_a_tiny_gain_on_a_small_holdout_is_not_significant() -> None:
    y = _labels(300, 5)
    champion = _scores(y, 1.0, 6)
    # Slightly more signal plus noise of the challenger's own: about +0.003 AUC.
    challenger = champion + 0.05 * y + np.random.default_rng(3).normal(0, 0.2, len(y))
    result = delong_test(y, challenger, champion, margin=0.0, alpha=0.05)
    assert 0.002 < result.diff < 0.005
    assert result.p_value > 0.05
    assert result.ci_low < 0 < result.ci_high
    report = judge_challenger(_holdout(y), challenger, champion, RULES, TELCO)
    assert not report.promote
    assert report.summary == "not significantly better"
    assert "does not beat champion" in report.reason


def test_a_large_gain_on_a_large_holdout_is_significant() -> None:
    y = _labels(2000, 8)
    good, noisy = _scores(y, 1.0, 9), _scores(y, 3.0, 10)
    result = delong_test(y, good, noisy, margin=0.002, alpha=0.05)
    assert result.diff > 0.1
    assert result.p_value < 1e-6
    assert result.ci_low > 0.002
    report = judge_challenger(_holdout(y), good, noisy, RULES, TELCO)
    assert report.promote
    assert report.reason.startswith(f"challenger AUC {result.challenger_auc:.4f} beats champion")


def test_delong_standard_error_matches_a_paired_bootstrap() -> None:
    y = _labels(600, 11)
    shared = np.random.default_rng(12).normal(0, 1, len(y))  # correlated models, as in practice
    a = y + shared + np.random.default_rng(13).normal(0, 0.7, len(y))
    b = y + shared + np.random.default_rng(14).normal(0, 0.7, len(y))
    result = delong_test(y, a, b, margin=0.0, alpha=0.05)
    rng = np.random.default_rng(15)
    diffs = []
    for _ in range(1000):
        rows = rng.integers(0, len(y), len(y))
        diffs.append(roc_auc(y[rows], a[rows]) - roc_auc(y[rows], b[rows]))
    assert result.std_error == pytest.approx(np.std(diffs, ddof=1), rel=0.12)


@pytest.mark.parametrize("seed", range(6))
def test_interval_and_p_value_agree(seed: int) -> None:
    """The (1 - 2 alpha) interval clears the margin exactly when the one-sided test rejects."""
    y = _labels(400, seed)
    a, b = _scores(y, 1.0, seed + 100), _scores(y, 1.1, seed + 200)
    result = delong_test(y, a, b, margin=0.002, alpha=0.05)
    assert result.confidence == pytest.approx(0.9)
    assert (result.ci_low > 0.002) == (result.p_value < 0.05)
    assert result.ci_low < result.diff < result.ci_high


def test_delong_refuses_a_holdout_without_two_of_each_class() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        delong_test(np.array([0, 0, 0, 1]), np.arange(4.0), np.arange(4.0), margin=0, alpha=0.05)


def test_the_first_model_only_needs_the_minimum() -> None:
    y = _labels(500, 16)
    weak = _scores(y, 1.0, 17)
    first = judge_challenger(_holdout(y), weak, None, RULES, TELCO)
    assert first.promote and first.comparison is None
    assert first.reason == f"no champion yet; challenger AUC {first.challenger_auc:.4f} >= 0.6"
    assert first.p_value_text() == "n/a (no champion)"
    below = judge_challenger(_holdout(y), _scores(y, 20.0, 18), None, RULES, TELCO)
    assert not below.promote and "is below minimum 0.6" in below.reason
    broken = judge_challenger(_holdout(y), np.full(len(y), np.nan), weak, RULES, TELCO)
    assert not broken.promote
    assert broken.reason == "challenger AUC is not a number (nan)"


def _two_segment_holdout(small_rows: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Month-to-month customers (3,000): the challenger is far better. Two-year customers
    (`small_rows`): the challenger ranks them at random, the champion well."""
    big, small = _labels(3000, 20, 0.4), _labels(small_rows, 21, 0.3)
    y = np.concatenate([big, small])
    contract = ["Month-to-month"] * len(big) + ["Two year"] * len(small)
    champion = np.concatenate([_scores(big, 2.0, 22), _scores(small, 0.5, 23)])
    challenger = np.concatenate(
        [_scores(big, 0.8, 24), np.random.default_rng(25).uniform(size=small_rows)]
    )
    return _holdout(y, Contract=contract), challenger, champion


def test_a_challenger_better_overall_but_worse_on_a_slice_is_kept_out() -> None:
    holdout, challenger, champion = _two_segment_holdout(small_rows=400)
    rules = GateRules(0.6, 0.002, 0.05, (SliceSpec.parse("Contract"),), 200, 0.02)
    report = judge_challenger(holdout, challenger, champion, rules, TELCO)
    assert report.comparison.p_value < 1e-6  # overall, clearly and significantly better
    assert not report.promote
    assert report.summary == "worse on 1 slice"
    (worse,) = report.worse_slices
    assert worse.name == "Contract = Two year" and worse.rows == 400
    assert worse.diff < -0.2
    assert "worse than champion by more than 0.02 AUC on Contract = Two year" in report.reason
    verdicts = {s.name: s.verdict for s in report.slices}
    assert verdicts == {"Contract = Month-to-month": "ok", "Contract = Two year": "worse"}


def test_a_slice_below_the_minimum_rows_is_not_judged() -> None:
    holdout, challenger, champion = _two_segment_holdout(small_rows=150)
    rules = GateRules(0.6, 0.002, 0.05, (SliceSpec.parse("Contract"),), 200, 0.02)
    report = judge_challenger(holdout, challenger, champion, rules, TELCO)
    assert report.promote
    small = next(s for s in report.slices if s.name == "Contract = Two year")
    assert small.verdict == "too few rows" and small.diff < -0.2  # shown, not judged
    assert "not judged (< 200 rows)" in report.slices_markdown()
    assert report.slices_text() == "1 judged, 0 worse, 1 not judged"


def test_a_slice_with_one_class_is_not_judged_and_says_so() -> None:
    y = _labels(1000, 30)
    segment = np.where(np.arange(len(y)) < 300, "A", "B")
    y[:300] = 0  # segment A has no churners
    holdout = _holdout(y, PaymentMethod=segment)
    rules = GateRules(0.6, 0.0, 0.05, (SliceSpec.parse("PaymentMethod"),), 100, 0.02)
    report = judge_challenger(holdout, _scores(y, 0.5, 31), _scores(y, 2.0, 32), rules, TELCO)
    one_class = report.slices[0]
    assert (one_class.name, one_class.verdict, one_class.challenger_auc) == (
        "PaymentMethod = A",
        "one class",
        None,
    )
    assert "not judged (one class only)" in report.slices_markdown()
    assert report.promote


def test_numeric_bands_follow_the_edges_and_missing_values_get_their_own_slice() -> None:
    spec = SliceSpec.parse("tenure:0,6,12")
    frame = pd.DataFrame({"tenure": [0, 5, 6, 11, 12, 70, None]})
    groups = {name: mask.sum() for name, mask in spec.groups(frame)}
    assert list(groups) == [
        "tenure in [0, 6)",
        "tenure in [6, 12)",
        "tenure >= 12",
        "tenure missing",
    ]
    assert list(groups.values()) == [2, 2, 2, 1]
    assert SliceSpec.parse("Contract") == SliceSpec("Contract")
    for bad in ("tenure:6,0", "tenure:a,b", ":1,2"):
        with pytest.raises(ValueError):
            SliceSpec.parse(bad)
    with pytest.raises(ValueError, match="not in the holdout"):
        SliceSpec("Contract").groups(frame)


def test_the_report_serializes_to_json_and_markdown() -> None:
    holdout, challenger, champion = _two_segment_holdout(small_rows=400)
    holdout["tenure"] = np.arange(len(holdout)) % 72
    specs = (SliceSpec.parse("Contract"), SliceSpec.parse("tenure:0,6,12,24,48"))
    report = judge_challenger(
        holdout, challenger, champion, GateRules(0.6, 0.002, 0.05, specs), TELCO
    )
    data = json.loads(report.to_json())
    assert data["decision"] == "rejected" and data["promote"] is False
    assert data["comparison"]["p_value"] == pytest.approx(report.comparison.p_value)
    assert data["rules"]["slices"] == ["Contract", "tenure:0,6,12,24,48"]
    assert len(data["slices"]) == 2 + 5
    assert data["slices"][1]["verdict_text"].startswith("worse (kept out")
    markdown = report.to_markdown()
    assert markdown.startswith("# Promotion gate: rejected")
    assert "| Contract = Two year | 400 |" in markdown
    assert "| tenure >= 48 |" in markdown
    assert report.diff_ci_text().endswith("] 90%")
    first = judge_challenger(holdout, challenger, None, GateRules(0.6, 0.002, 0.05, specs), TELCO)
    first_data = json.loads(first.to_json())  # None, never NaN, where nothing was compared
    assert first_data["comparison"] is None and first_data["champion_auc"] is None
    assert all(row["verdict"] == "challenger only" for row in first_data["slices"])
    assert not any(isinstance(v, float) and math.isnan(v) for v in first_data.values())


def test_the_frozen_reference_is_judged_first_and_keeps_out_a_model_worse_there() -> None:
    """Better on the production rows (the holdout's tail), worse on the frozen reference."""
    y = _labels(3000, 21)
    champion = _scores(y, 1.0, 22)
    challenger = _scores(y, 0.3, 23)
    challenger[:1000] = _scores(y[:1000], 1.6, 24)  # lost signal on the frozen rows
    free = judge_challenger(_holdout(y), challenger, champion, RULES, TELCO)
    assert free.promote  # judged on the whole holdout alone, it would pass
    report = judge_challenger(_holdout(y), challenger, champion, RULES, TELCO, frozen_rows=1000)
    assert not report.promote
    assert report.slices[0].name == "frozen reference holdout" and report.slices[0].rows == 1000
    assert report.slices[0].verdict == "worse"
    assert "on frozen reference holdout" in report.reason


def test_a_holdout_that_is_all_frozen_adds_no_slice() -> None:
    y = _labels(500, 25)
    scores = _scores(y, 1.0, 26)
    for frozen_rows in (None, 500):
        report = judge_challenger(
            _holdout(y), scores, scores, RULES, TELCO, frozen_rows=frozen_rows
        )
        assert report.slices == ()
