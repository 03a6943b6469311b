"""The promotion gate: a challenger replaces the champion only when, on the same holdout, it is
significantly better overall and no large enough customer slice gets clearly worse.

Overall, DeLong's test for two correlated ROC curves (DeLong, DeLong & Clarke-Pearson, 1988)
compares the AUCs of both models scored on the same customers: H0 is "the challenger adds at
most `margin` AUC", rejected one-sided at `alpha`. The reported interval is the two-sided
(1 - 2 alpha) one, so its lower bound clears the margin exactly when p < alpha.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from scipy.stats import norm, rankdata

from churnops.contract import Contract
from churnops.model.scoring import labels
from churnops.model.slices import SliceSpec

# DeLong's test


@dataclass(frozen=True)
class AucComparison:
    """Challenger minus champion ROC AUC on the same rows, with DeLong's standard error."""

    challenger_auc: float
    champion_auc: float
    diff: float
    std_error: float
    ci_low: float
    ci_high: float
    confidence: float  # two-sided level of [ci_low, ci_high]
    margin: float
    p_value: float  # one-sided, H0: diff <= margin


def placement_values(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeLong's structural components: for each positive, the share of negatives it outscores;
    for each negative, the share of positives that outscore it (ties count half). Each mean is
    the AUC. Midranks give both in O(N log N): a positive's rank among all rows minus its rank
    among the positives counts the negatives below it."""
    positive = y_true.astype(bool)
    pos, neg = scores[positive], scores[~positive]
    overall = rankdata(scores)
    v10 = (overall[positive] - rankdata(pos)) / len(neg)
    v01 = 1.0 - (overall[~positive] - rankdata(neg)) / len(pos)
    return v10, v01


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """ROC AUC (ties count half); NaN when a score is not finite."""
    _check_labels(y_true, at_least=1)
    if not np.all(np.isfinite(scores)):
        return math.nan
    return float(placement_values(y_true, scores)[0].mean())


def delong_test(
    y_true: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray,
    *,
    margin: float,
    alpha: float,
) -> AucComparison:
    """Paired comparison of two models' AUCs on the same rows. The variance of the difference is
    the sample variance of the per-row differences of placement values, over positives and
    negatives separately (DeLong's covariance matrix contracted with the contrast [1, -1])."""
    y = np.asarray(y_true)
    _check_labels(y, at_least=2)  # a variance needs two of each
    challenger = np.asarray(challenger_scores, dtype=np.float64)
    champion = np.asarray(champion_scores, dtype=np.float64)
    if challenger.shape != y.shape or champion.shape != y.shape:
        raise ValueError("labels and both score arrays must have the same length")
    v10_a, v01_a = placement_values(y, challenger)
    v10_b, v01_b = placement_values(y, champion)
    d10, d01 = v10_a - v10_b, v01_a - v01_b
    variance = d10.var(ddof=1) / len(d10) + d01.var(ddof=1) / len(d01)
    std_error = math.sqrt(max(float(variance), 0.0))
    auc_a, auc_b = float(v10_a.mean()), float(v10_b.mean())
    diff = auc_a - auc_b
    if std_error > 0:
        p_value = float(norm.sf((diff - margin) / std_error))
    else:  # identical rankings (or a degenerate holdout): the difference is exact
        p_value = 0.0 if diff > margin else 1.0
    half_width = float(norm.ppf(1 - alpha)) * std_error
    return AucComparison(
        challenger_auc=auc_a,
        champion_auc=auc_b,
        diff=diff,
        std_error=std_error,
        ci_low=diff - half_width,
        ci_high=diff + half_width,
        confidence=1 - 2 * alpha,
        margin=margin,
        p_value=p_value,
    )


def _check_labels(y_true: np.ndarray, at_least: int) -> None:
    counts = np.bincount(np.asarray(y_true, dtype=np.int64), minlength=2)
    if len(counts) > 2 or counts.min() < at_least:
        raise ValueError(
            f"labels must be 0/1 with at least {at_least} churner(s) and {at_least} stayer(s)"
        )


# Slices


Verdict = Literal["ok", "worse", "too few rows", "one class", "challenger only"]
JUDGED: tuple[Verdict, ...] = ("ok", "worse")


@dataclass(frozen=True)
class SliceResult:
    name: str
    rows: int
    churn_rate: float
    challenger_auc: float | None
    champion_auc: float | None
    diff: float | None
    verdict: Verdict


def compare_slices(
    frame: pd.DataFrame,
    y_true: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    specs: Sequence[SliceSpec],
    *,
    min_rows: int,
    tolerance: float,
) -> list[SliceResult]:
    """Both models' AUC per slice; a slice is judged only with `min_rows` rows and both classes,
    and is `worse` when the challenger loses more than `tolerance` AUC there."""
    return [
        judge_rows(name, rows, y_true, challenger_scores, champion_scores, min_rows, tolerance)
        for spec in specs
        for name, rows in spec.groups(frame)
    ]


def judge_rows(
    name: str,
    rows: np.ndarray,
    y_true: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    min_rows: int,
    tolerance: float,
) -> SliceResult:
    """Both models' AUC on the rows `rows` selects, and the slice verdict."""
    y = y_true[rows]
    churners = int(y.sum())
    challenger = champion = diff = None
    if 0 < churners < len(y):  # both classes: AUC is defined
        challenger = roc_auc(y, challenger_scores[rows])
        if champion_scores is not None:
            champion = roc_auc(y, champion_scores[rows])
            diff = challenger - champion
    verdict = _verdict(challenger, diff, len(y), min_rows, tolerance)
    return SliceResult(name, len(y), churners / len(y), challenger, champion, diff, verdict)


FROZEN_REFERENCE = "frozen reference holdout"


def _frozen_reference(
    y: np.ndarray,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    frozen_rows: int | None,
    rows: int,
    rules: GateRules,
) -> list[SliceResult]:
    """The frozen reference as a slice, when it is only part of the holdout."""
    if frozen_rows is None or frozen_rows >= rows:
        return []
    frozen = np.arange(rows) < frozen_rows
    return [
        judge_rows(
            FROZEN_REFERENCE,
            frozen,
            y,
            challenger_scores,
            champion_scores,
            rules.slice_min_rows,
            rules.slice_tolerance,
        )
    ]


def _verdict(
    challenger: float | None, diff: float | None, rows: int, min_rows: int, tolerance: float
) -> Verdict:
    if challenger is None:
        return "one class"
    if diff is None:
        return "challenger only"
    if rows < min_rows:
        return "too few rows"
    return "worse" if diff < -tolerance else "ok"


# The decision and its report


@dataclass(frozen=True)
class GateRules:
    """What a challenger must show; from the `CHURNOPS_GATE_*` settings."""

    min_auc: float
    margin: float
    alpha: float
    slices: tuple[SliceSpec, ...] = ()
    slice_min_rows: int = 200
    slice_tolerance: float = 0.02

    @property
    def confidence(self) -> float:
        return 1 - 2 * self.alpha


@dataclass(frozen=True)
class GateReport:
    """The gate's decision with everything it was based on (JSON and Markdown for people)."""

    promote: bool
    reason: str
    rules: GateRules
    rows: int
    churn_rate: float
    challenger_auc: float
    champion_auc: float | None
    comparison: AucComparison | None  # None when there is no champion to compare with
    slices: tuple[SliceResult, ...] = field(default=())

    @property
    def decision(self) -> str:
        return "promoted" if self.promote else "rejected"

    @property
    def worse_slices(self) -> list[SliceResult]:
        return [s for s in self.slices if s.verdict == "worse"]

    @property
    def summary(self) -> str:
        """The decision's main ground in a few words (the reason has the figures)."""
        if not math.isfinite(self.challenger_auc) or self.challenger_auc < self.rules.min_auc:
            return "below the minimum AUC"
        if self.comparison is None:
            return "first model over the minimum AUC"
        grounds = []
        if not self.comparison.p_value < self.rules.alpha:
            grounds.append("not significantly better")
        if self.worse_slices:
            count = len(self.worse_slices)
            grounds.append(f"worse on {count} slice{'s' if count > 1 else ''}")
        return ", ".join(grounds) or "significantly better, no slice worse"

    def p_value_text(self) -> str:
        return f"{self.comparison.p_value:.3g}" if self.comparison else "n/a (no champion)"

    def diff_ci_text(self) -> str:
        c = self.comparison
        if c is None:
            return "n/a (no champion)"
        return f"{c.diff:+.4f} [{c.ci_low:+.4f}, {c.ci_high:+.4f}] {c.confidence:.0%}"

    def slices_text(self) -> str:
        judged = [s for s in self.slices if s.verdict in JUDGED]
        return (
            f"{len(judged)} judged, {len(self.worse_slices)} worse, "
            f"{len(self.slices) - len(judged)} not judged"
        )

    def slice_rows(self) -> list[dict[str, object]]:
        """The slice table as plain rows (the model card, Dagster metadata)."""
        return [
            {
                "slice": s.name,
                "rows": s.rows,
                "churn rate": f"{s.churn_rate:.1%}",
                "challenger AUC": s.challenger_auc,
                "champion AUC": s.champion_auc,
                "diff": None if s.diff is None else f"{s.diff:+.4f}",
                "verdict": _verdict_text(s.verdict, self.rules),
            }
            for s in self.slices
        ]

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["decision"] = self.decision
        data["rules"]["slices"] = [spec.text() for spec in self.rules.slices]
        for row, result in zip(data["slices"], self.slices, strict=True):
            row["verdict_text"] = _verdict_text(result.verdict, self.rules)
        return _finite(data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def overall_markdown(self) -> str:
        rows = [
            ("decision", self.decision),
            ("reason", self.reason),
            ("holdout rows", f"{self.rows:,} (churn rate {self.churn_rate:.1%})"),
            ("challenger AUC", f"{self.challenger_auc:.4f}"),
            ("champion AUC", _number(self.champion_auc)),
            ("AUC difference and interval", self.diff_ci_text()),
            ("DeLong std. error", _number(self.comparison.std_error if self.comparison else None)),
            (
                f"p-value (H0: difference <= {self.rules.margin:g})",
                f"{self.p_value_text()}, alpha {self.rules.alpha:g}",
            ),
            ("slices", self.slices_text()),
        ]
        return _table(("", "value"), rows)

    def slices_markdown(self) -> str:
        if not self.slices:
            return "No slices declared (the contract's `slices`, or `CHURNOPS_GATE_SLICES`)."
        rows = [
            (
                s.name,
                f"{s.rows:,}",
                f"{s.churn_rate:.1%}",
                _number(s.challenger_auc),
                _number(s.champion_auc),
                "n/a" if s.diff is None else f"{s.diff:+.4f}",
                _verdict_text(s.verdict, self.rules),
            )
            for s in self.slices
        ]
        header = ("slice", "rows", "churn", "challenger AUC", "champion AUC", "diff", "verdict")
        return _table(header, rows)

    def to_markdown(self) -> str:
        rules = self.rules
        return "\n".join(
            [
                f"# Promotion gate: {self.decision}",
                "",
                self.overall_markdown(),
                "",
                "## Slices",
                "",
                f"Judged when a slice has at least {rules.slice_min_rows} rows and both classes; "
                f"`worse` when the challenger loses more than {rules.slice_tolerance:g} AUC.",
                "",
                self.slices_markdown(),
                "",
            ]
        )


def judge_challenger(
    holdout: pd.DataFrame,
    challenger_scores: np.ndarray,
    champion_scores: np.ndarray | None,
    rules: GateRules,
    contract: Contract,
    frozen_rows: int | None = None,
) -> GateReport:
    """Both score arrays are the two models' churn probabilities for the rows of `holdout`
    (cleaned under `contract`). The first model (no champion) only has to clear `min_auc`.

    When only the first `frozen_rows` rows are the frozen reference holdout (the rest came
    from production labels), that part is judged as a slice of its own, always first: a
    challenger worse there by more than the slice tolerance is kept out, however well it fits
    the production labels."""
    y = labels(holdout, contract)
    challenger_scores = np.asarray(challenger_scores, dtype=np.float64)
    challenger_auc = roc_auc(y, challenger_scores)
    comparison = None
    if champion_scores is not None and math.isfinite(challenger_auc):
        champion_scores = np.asarray(champion_scores, dtype=np.float64)
        comparison = delong_test(
            y, challenger_scores, champion_scores, margin=rules.margin, alpha=rules.alpha
        )
    slices = ()
    if math.isfinite(challenger_auc):
        slices = tuple(
            _frozen_reference(
                y, challenger_scores, champion_scores, frozen_rows, len(holdout), rules
            )
        ) + tuple(
            compare_slices(
                holdout,
                y,
                challenger_scores,
                champion_scores,
                rules.slices,
                min_rows=rules.slice_min_rows,
                tolerance=rules.slice_tolerance,
            )
        )
    promote, reason = _decide(challenger_auc, comparison, slices, rules)
    return GateReport(
        promote=promote,
        reason=reason,
        rules=rules,
        rows=len(y),
        churn_rate=float(y.mean()),
        challenger_auc=challenger_auc,
        champion_auc=comparison.champion_auc if comparison else None,
        comparison=comparison,
        slices=slices,
    )


def _decide(
    challenger_auc: float,
    comparison: AucComparison | None,
    slices: Sequence[SliceResult],
    rules: GateRules,
) -> tuple[bool, str]:
    if not math.isfinite(challenger_auc):
        return False, f"challenger AUC is not a number ({challenger_auc})"
    if challenger_auc < rules.min_auc:
        return False, f"challenger AUC {challenger_auc:.4f} is below minimum {rules.min_auc}"
    if comparison is None:
        return True, f"no champion yet; challenger AUC {challenger_auc:.4f} >= {rules.min_auc}"
    c = comparison
    evidence = (
        f"diff {c.diff:+.4f}, {c.confidence:.0%} CI [{c.ci_low:+.4f}, {c.ci_high:+.4f}], "
        f"p = {c.p_value:.3g}"
    )
    failures = []
    if not c.p_value < rules.alpha:
        failures.append(
            f"challenger AUC {c.challenger_auc:.4f} does not beat champion {c.champion_auc:.4f} "
            f"by more than the margin {rules.margin:g} at alpha {rules.alpha:g} ({evidence})"
        )
    worse = [s for s in slices if s.verdict == "worse"]
    if worse:
        named = ", ".join(f"{s.name} ({s.diff:+.4f})" for s in worse)
        tolerance = rules.slice_tolerance
        failures.append(f"worse than champion by more than {tolerance:g} AUC on {named}")
    if failures:
        return False, "; ".join(failures)
    return True, (
        f"challenger AUC {c.challenger_auc:.4f} beats champion {c.champion_auc:.4f} by more "
        f"than the margin {rules.margin:g} ({evidence}); no slice worse by more than "
        f"{rules.slice_tolerance:g}"
    )


def _verdict_text(verdict: Verdict, rules: GateRules) -> str:
    return {
        "ok": "ok",
        "worse": f"worse (kept out: > {rules.slice_tolerance:g} AUC below champion)",
        "too few rows": f"not judged (< {rules.slice_min_rows} rows)",
        "one class": "not judged (one class only)",
        "challenger only": "not judged (no champion)",
    }[verdict]


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return "\n".join([line(header), line(["---"] * len(header)), *(line(r) for r in rows)])


def _finite(value: object) -> object:
    """JSON has no NaN: non-finite floats become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
