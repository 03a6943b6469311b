"""Drift and live-quality statistics shared by the monitoring sensor and the drift report.

Per feature: the population stability index (effect size) and a two-sample test (KS for
numbers, chi-square for categories and booleans). A feature drifts only when both agree: with
thousands of rows a test flags differences too small to matter, and PSI alone ignores sample
noise. Which features there are and how each is judged comes from the data contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import brier_score_loss, roc_auc_score

from churnops.contract import Contract, Feature
from churnops.monitoring.prediction_store import SCORE_COLUMN
from churnops.settings import Settings

EPSILON = 1e-4
# Levels of an open categorical compared one by one (by frequency); the rest share a bucket.
MAX_OPEN_LEVELS = 100
BOOLEAN_LEVELS = (0.0, 1.0)


@dataclass(frozen=True)
class DriftThresholds:
    """When traffic counts as drifted or degraded. No defaults: every value comes from
    `Settings` (see `from_settings`), so the sensor, the report and the chart agree."""

    psi: float
    p_value: float
    drift_share: float
    score_psi: float
    min_rows: int
    min_labels: int
    min_live_auc: float

    @classmethod
    def from_settings(cls, settings: Settings) -> DriftThresholds:
        return cls(
            psi=settings.drift_psi,
            p_value=settings.drift_p_value,
            drift_share=settings.drift_share,
            score_psi=settings.drift_score_psi,
            min_rows=settings.monitor_min_rows,
            min_labels=settings.drift_min_labels,
            min_live_auc=settings.drift_min_live_auc,
        )


@dataclass(frozen=True)
class FeatureDrift:
    feature: str
    test: str
    statistic: float
    p_value: float
    psi: float
    drifted: bool


@dataclass(frozen=True)
class DriftReport:
    """One window's statistics, with the thresholds its `drifted` flags were judged by."""

    rows: int
    features: list[FeatureDrift]
    score: FeatureDrift
    thresholds: DriftThresholds
    quality: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    @property
    def drift_share(self) -> float:
        return len(self.drifted_features) / len(self.features) if self.features else 0.0

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([vars(f) for f in [*self.features, self.score]])


def reference_sample(
    holdout: pd.DataFrame,
    scores: np.ndarray,
    seed: int,
    contract: Contract,
    max_rows: int = 10_000,
) -> pd.DataFrame:
    """Holdout features with the model's scores: what 'normal' traffic looks like."""
    reference = holdout.loc[:, list(contract.feature_names)].assign(**{SCORE_COLUMN: scores})
    if len(reference) > max_rows:
        reference = reference.sample(max_rows, random_state=seed)
    return reference.reset_index(drop=True)


def psi(reference_share: np.ndarray, current_share: np.ndarray) -> float:
    """Population stability index between two distributions over the same bins."""
    ref = np.clip(np.asarray(reference_share, dtype=float), EPSILON, None)
    cur = np.clip(np.asarray(current_share, dtype=float), EPSILON, None)
    ref, cur = ref / ref.sum(), cur / cur.sum()
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def numeric_drift(
    name: str, reference: np.ndarray, current: np.ndarray, t: DriftThresholds, bins: int = 10
) -> FeatureDrift:
    ref = np.asarray(reference, dtype=float)
    cur = np.asarray(current, dtype=float)
    ref, cur = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    edges = np.unique(np.quantile(ref, np.linspace(0, 1, bins + 1)[1:-1]))
    ref_counts = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=len(edges) + 1)
    cur_counts = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=len(edges) + 1)
    index = psi(ref_counts / len(ref), cur_counts / max(len(cur), 1))
    statistic, p_value = stats.ks_2samp(ref, cur)
    drifted = index >= t.psi and p_value < t.p_value
    return FeatureDrift(name, "ks", float(statistic), float(p_value), index, bool(drifted))


def categorical_drift(
    name: str,
    reference: pd.Series,
    current: pd.Series,
    categories: Sequence[object],
    t: DriftThresholds,
) -> FeatureDrift:
    """Shares per category; values outside `categories` share one extra bucket, so traffic
    full of unknown values counts as drift too."""
    ref_counts = _counts(reference, categories)
    cur_counts = _counts(current, categories)
    index = psi(ref_counts / max(ref_counts.sum(), 1), cur_counts / max(cur_counts.sum(), 1))
    statistic, p_value = chi_square(ref_counts, cur_counts)
    drifted = index >= t.psi and p_value < t.p_value
    return FeatureDrift(name, "chi2", float(statistic), float(p_value), index, bool(drifted))


def chi_square(ref_counts: np.ndarray, cur_counts: np.ndarray) -> tuple[float, float]:
    """Chi-square test of two count vectors over the same categories (empty ones dropped)."""
    seen = (ref_counts + cur_counts) > 0
    table = np.vstack([ref_counts[seen], cur_counts[seen]])
    if table.shape[1] < 2:
        return 0.0, 1.0
    statistic, p_value = stats.chi2_contingency(table)[:2]
    return float(statistic), float(p_value)


def _counts(values: pd.Series, categories: Sequence[object]) -> np.ndarray:
    """Counts per category plus one for any other (missing values are not counted)."""
    counted = values.value_counts()
    known = counted.reindex(list(categories), fill_value=0).to_numpy()
    return np.append(known, int(counted.sum()) - int(known.sum()))


def observed_levels(
    reference: pd.Series, current: pd.Series, limit: int = MAX_OPEN_LEVELS
) -> list[object]:
    """The levels of an open categorical seen in either sample, most frequent first."""
    counts = pd.concat([reference, current]).value_counts()
    return list(counts.index[:limit])


def feature_drift(
    feature: Feature, reference: pd.Series, current: pd.Series, t: DriftThresholds
) -> FeatureDrift:
    """One feature judged by its contract kind: booleans as two categories (0/1), open
    categoricals over the values actually observed."""
    if feature.kind == "boolean":
        return categorical_drift(
            feature.name, _as_float(reference), _as_float(current), BOOLEAN_LEVELS, t
        )
    if feature.kind == "categorical":
        if feature.is_open:
            reference, current = reference.astype(object), current.astype(object)
            categories: Sequence[object] = observed_levels(reference, current)
        else:
            categories = feature.categories or ()
        return categorical_drift(feature.name, reference, current, categories, t)
    return numeric_drift(feature.name, _as_float(reference), _as_float(current), t)


def _as_float(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").astype(float)


def live_quality(
    window: pd.DataFrame, min_labels: int, contract: Contract
) -> dict[str, dict[str, float]]:
    """ROC AUC and Brier per model version over predictions whose label has arrived (labels in
    any spelling the contract's target accepts)."""
    target = contract.target
    labels = window[target.name]
    encoded = labels.map({value: target.encode(value) for value in labels.dropna().unique()})
    labelled = window.assign(_label=encoded)[encoded.notna()]
    quality: dict[str, dict[str, float]] = {}
    for version, rows in labelled.groupby("model_version"):
        y_true = rows["_label"].to_numpy(dtype=int)
        entry = {"labels": float(len(rows))}
        if len(rows) >= min_labels and 0 < y_true.sum() < len(y_true):
            entry["roc_auc"] = float(roc_auc_score(y_true, rows[SCORE_COLUMN]))
            entry["brier"] = float(brier_score_loss(y_true, rows[SCORE_COLUMN]))
        quality[str(version)] = entry
    return quality


def build_report(
    reference: pd.DataFrame, window: pd.DataFrame, t: DriftThresholds, contract: Contract
) -> DriftReport:
    """Compare a window of logged predictions with the champion's training reference."""
    features = [
        feature_drift(feature, reference[feature.name], window[feature.name], t)
        for feature in contract.features
    ]
    score = numeric_drift(
        SCORE_COLUMN, reference[SCORE_COLUMN].to_numpy(), window[SCORE_COLUMN].to_numpy(), t
    )
    labelled = contract.target.name in window
    quality = live_quality(window, t.min_labels, contract) if labelled else {}
    return DriftReport(
        rows=len(window), features=features, score=score, thresholds=t, quality=quality
    )


@dataclass(frozen=True)
class RetrainDecision:
    retrain: bool
    reason: str


def decide_retrain(report: DriftReport, t: DriftThresholds) -> RetrainDecision:
    """Retrain on enough feature drift, score drift, or poor live quality; say why either way."""
    reasons = []
    if report.drift_share >= t.drift_share:
        reasons.append(
            f"{len(report.drifted_features)}/{len(report.features)} features drifted "
            f"({', '.join(report.drifted_features)})"
        )
    if report.score.psi >= t.score_psi and report.score.p_value < t.p_value:
        reasons.append(f"score PSI {report.score.psi:.3f} >= {t.score_psi}")
    for version, quality in sorted(report.quality.items()):
        auc = quality.get("roc_auc")
        if auc is not None and auc < t.min_live_auc:
            reasons.append(f"live ROC AUC of v{version} {auc:.3f} < {t.min_live_auc}")
    if reasons:
        return RetrainDecision(True, "; ".join(reasons))
    live = ", ".join(
        f"v{v} AUC {q['roc_auc']:.3f}" for v, q in sorted(report.quality.items()) if "roc_auc" in q
    )
    return RetrainDecision(
        False,
        f"stable over {report.rows} predictions: {len(report.drifted_features)}/"
        f"{len(report.features)} features drifted (< {t.drift_share:.0%}), score PSI "
        f"{report.score.psi:.3f} < {t.score_psi}" + (f", live {live}" if live else ""),
    )
