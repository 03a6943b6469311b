"""The live comparison of a rollout: the champion's answered score and the challenger's shadow
score of the same labelled requests, compared pairwise. Pure functions over arrays.

Pairing is what makes a small labelled sample informative: both versions saw the same
customers, so the noise of who happened to be labelled cancels in the difference. The AUC
difference uses DeLong's paired test (`churnops.model.gate.delong_test`, the offline gate's);
the Brier difference a normal interval over the per-request differences of squared errors.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import norm

from churnops.model.gate import delong_test

CALIBRATION_BINS = 10


@dataclass(frozen=True)
class ReliabilityBin:
    low: float
    high: float
    count: int
    mean_score: float | None  # None for an empty bin
    churn_rate: float | None


@dataclass(frozen=True)
class VersionQuality:
    version: str
    auc: float | None  # None with a single class among the labels
    brier: float
    ece: float  # expected calibration error over equal-width score bins
    bins: tuple[ReliabilityBin, ...]


@dataclass(frozen=True)
class Difference:
    """Challenger minus champion, with a two-sided `confidence` interval."""

    diff: float
    ci_low: float
    ci_high: float
    confidence: float

    def text(self) -> str:
        return f"{self.diff:+.4f} [{self.ci_low:+.4f}, {self.ci_high:+.4f}] {self.confidence:.0%}"


@dataclass(frozen=True)
class LiveComparison:
    champion: VersionQuality
    challenger: VersionQuality
    labelled: int  # paired labelled requests
    churners: int
    auc_diff: Difference | None  # None until both classes have two labels each
    brier_diff: Difference | None  # None below two requests

    def metrics(self) -> dict[str, float]:
        """Flat metrics for a tracking run (no None: a missing figure is left out)."""
        values: dict[str, float | None] = {
            "labelled_pairs": self.labelled,
            "churners": self.churners,
            "champion_auc": self.champion.auc,
            "challenger_auc": self.challenger.auc,
            "champion_brier": self.champion.brier,
            "challenger_brier": self.challenger.brier,
            "champion_ece": self.champion.ece,
            "challenger_ece": self.challenger.ece,
        }
        for name, difference in (("auc_diff", self.auc_diff), ("brier_diff", self.brier_diff)):
            if difference is not None:
                values |= {
                    name: difference.diff,
                    f"{name}_ci_low": difference.ci_low,
                    f"{name}_ci_high": difference.ci_high,
                }
        return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    def summary_rows(self) -> list[tuple[str, str, str, str]]:
        """(figure, champion, challenger, challenger - champion) for a table."""
        champion, challenger = self.champion, self.challenger
        return [
            ("version", f"v{champion.version}", f"v{challenger.version}", ""),
            ("ROC AUC", _figure(champion.auc), _figure(challenger.auc), _diff(self.auc_diff)),
            ("Brier", _figure(champion.brier), _figure(challenger.brier), _diff(self.brier_diff)),
            (f"ECE ({CALIBRATION_BINS} bins)", _figure(champion.ece), _figure(challenger.ece), ""),
        ]

    def to_markdown(self) -> str:
        header = "| figure | champion | challenger | challenger - champion (CI) |"
        lines = [
            f"{self.labelled:,} labelled paired requests ({self.churners:,} churners)",
            "",
            header,
            "| --- | --- | --- | --- |",
            *(f"| {' | '.join(row)} |" for row in self.summary_rows()),
            "",
            "Reliability (score bin: requests, mean score, churn rate):",
            "",
            "| bin | champion | challenger |",
            "| --- | --- | --- |",
        ]
        for ours, theirs in zip(self.champion.bins, self.challenger.bins, strict=True):
            lines.append(f"| {ours.low:.1f}-{ours.high:.1f} | {_bin(ours)} | {_bin(theirs)} |")
        return "\n".join(lines) + "\n"


def reliability(
    y: np.ndarray, scores: np.ndarray, bins: int = CALIBRATION_BINS
) -> tuple[float, tuple[ReliabilityBin, ...]]:
    """Expected calibration error (the count-weighted gap between mean score and churn rate
    over `bins` equal-width score bins) and the bins themselves."""
    edges = np.linspace(0.0, 1.0, bins + 1)
    index = np.clip(np.digitize(scores, edges[1:-1], right=False), 0, bins - 1)
    found, ece = [], 0.0
    for b in range(bins):
        inside = index == b
        count = int(inside.sum())
        mean_score = churn_rate = None
        if count:
            mean_score, churn_rate = float(scores[inside].mean()), float(y[inside].mean())
            ece += count / len(y) * abs(mean_score - churn_rate)
        found.append(
            ReliabilityBin(float(edges[b]), float(edges[b + 1]), count, mean_score, churn_rate)
        )
    return ece, tuple(found)


def _quality(version: str, y: np.ndarray, scores: np.ndarray, auc: float | None) -> VersionQuality:
    ece, bins = reliability(y, scores)
    return VersionQuality(version, auc, float(np.mean((scores - y) ** 2)), ece, bins)


def brier_difference(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, confidence: float
) -> Difference | None:
    """Challenger minus champion Brier score (negative: the challenger is better) with a
    normal interval over the per-request differences of squared errors."""
    if len(y) < 2:
        return None
    d = (challenger - y) ** 2 - (champion - y) ** 2
    mean = float(d.mean())
    half = float(norm.ppf(0.5 + confidence / 2)) * float(d.std(ddof=1)) / math.sqrt(len(d))
    return Difference(mean, mean - half, mean + half, confidence)


def compare_live(
    y_true: np.ndarray,
    champion_scores: np.ndarray,
    challenger_scores: np.ndarray,
    *,
    champion_version: str,
    challenger_version: str,
    confidence: float = 0.9,
) -> LiveComparison:
    """Both versions' quality on the same labelled requests and the paired differences
    (challenger minus champion) with two-sided `confidence` intervals."""
    y = np.asarray(y_true, dtype=np.int64)
    champion = np.asarray(champion_scores, dtype=np.float64)
    challenger = np.asarray(challenger_scores, dtype=np.float64)
    if not len(y) == len(champion) == len(challenger):
        raise ValueError("labels and both score arrays must have the same length")
    if not len(y):
        raise ValueError("no labelled paired requests to compare")
    churners = int(y.sum())
    auc_diff, auc_a, auc_b = None, None, None
    if min(churners, len(y) - churners) >= 2:
        test = delong_test(y, challenger, champion, margin=0.0, alpha=(1 - confidence) / 2)
        auc_a, auc_b = test.challenger_auc, test.champion_auc
        auc_diff = Difference(test.diff, test.ci_low, test.ci_high, confidence)
    return LiveComparison(
        champion=_quality(champion_version, y, champion, auc_b),
        challenger=_quality(challenger_version, y, challenger, auc_a),
        labelled=len(y),
        churners=churners,
        auc_diff=auc_diff,
        brier_diff=brier_difference(y, challenger, champion, confidence),
    )


def _figure(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _diff(difference: Difference | None) -> str:
    return "n/a (too few labels)" if difference is None else difference.text()


def _bin(b: ReliabilityBin) -> str:
    if b.mean_score is None or b.churn_rate is None:
        return "0"
    return f"{b.count:,}, {b.mean_score:.3f}, {b.churn_rate:.3f}"
