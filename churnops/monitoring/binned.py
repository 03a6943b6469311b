"""Drift and live quality from bin counts, so the store aggregates and nobody reads rows.

The reference (the champion's training sample, 10k rows) fixes the bins once: for a numeric
field `FINE_BINS` quantile bins, for a categorical its categories plus one bucket for any other
value, for a boolean 0/1. The prediction store counts the window into those bins with SQL
(`churnops.monitoring.window_counts`); these functions turn the two sets of counts into the
same `DriftReport` the exact statistics in `churnops.monitoring.drift` make from rows.

How the binned statistics differ from the exact ones:
- PSI is the same: the exact PSI already bins at the reference's deciles, and the decile edges
  are a subset of the fine edges, so merging fine bins gives the exact decile counts.
- Chi-square is the same: it is a statistic of category counts in the first place.
- KS is evaluated only at the `FINE_BINS - 1` reference quantiles, not at every observed value:
  the binned D is the largest gap between the two empirical CDFs at those edges, so it is never
  above the exact D and falls short of it by at most the largest share either sample puts in one
  bin (about 1% of the reference; more where the window piles into one bin). Its p-value comes
  from the asymptotic Kolmogorov distribution (scipy's `ks_2samp` uses it for large samples,
  an exact one below 10k rows), so at the same method it is never below the exact D's: binned
  KS is the more conservative test, and flags a little less often near the threshold.
- Live AUC counts score pairs inside one of `QUALITY_BINS` equal-width score bins as ties (half
  a pair each), so it differs from the exact AUC by at most half the share of such pairs; the
  Brier score is exact (from sums of p and p^2 per label).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from churnops.contract import Contract
from churnops.monitoring.drift import (
    BOOLEAN_LEVELS,
    MAX_OPEN_LEVELS,
    DriftReport,
    DriftThresholds,
    FeatureDrift,
    chi_square,
    psi,
)
from churnops.monitoring.prediction_store import SCORE_COLUMN

FINE_BINS = 100
QUALITY_BINS = 1000
# Bin key of a missing value: counted as a row, left out of every statistic (like the exact
# statistics drop NaN).
MISSING = "-1"
# Open categoricals are counted by value; the key is the value behind this prefix.
VALUE_PREFIX = "v:"

Counts = dict[str, int]


@dataclass(frozen=True)
class FieldBins:
    """How one field is binned: `numeric` by `edges` (bin = how many edges are <= the value),
    `levels` by index into `levels` (len(levels) for any other value), `open` by value."""

    name: str
    kind: str  # "numeric" | "levels" | "open"
    edges: tuple[float, ...] = ()
    deciles: tuple[float, ...] = ()
    levels: tuple[object, ...] = ()
    boolean: bool = False


@dataclass(frozen=True)
class BinnedReference:
    """The reference's bins and its counts in them, per field (the features, then the score)."""

    fields: tuple[FieldBins, ...]
    counts: dict[str, Counts]

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(bins.name for bins in self.fields)


def psi_edges(values: np.ndarray) -> tuple[float, ...]:
    """The reference's deciles, exactly as `drift.numeric_drift` bins for PSI."""
    clean = _present(values)
    if clean.size == 0:
        return ()
    return tuple(float(x) for x in np.unique(np.quantile(clean, np.linspace(0, 1, 11)[1:-1])))


def fine_edges(values: np.ndarray, bins: int = FINE_BINS) -> tuple[float, ...]:
    """The reference's `bins`-quantiles and its deciles (distinct): KS is judged at all of
    them, PSI at the deciles."""
    clean = _present(values)
    if clean.size == 0:
        return ()
    quantiles = np.quantile(clean, np.arange(1, bins) / bins)
    return tuple(float(x) for x in np.unique(np.concatenate([quantiles, psi_edges(clean)])))


def _present(values: np.ndarray) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    return array[~np.isnan(array)]


def numeric_counts(values: np.ndarray, edges: tuple[float, ...]) -> Counts:
    """Counts of `values` per bin (bin = number of edges <= value), missing under MISSING."""
    array = np.asarray(values, dtype=float)
    missing = int(np.isnan(array).sum())
    index = np.searchsorted(np.asarray(edges, dtype=float), array[~np.isnan(array)], "right")
    found = np.bincount(index, minlength=len(edges) + 1)
    counts = {str(i): int(n) for i, n in enumerate(found) if n}
    if missing:
        counts[MISSING] = missing
    return counts


def level_counts(values: pd.Series, levels: tuple[object, ...]) -> Counts:
    """Counts per level index, any other value at index len(levels), missing under MISSING."""
    counted = values.value_counts(dropna=True)
    known = counted.reindex(list(levels), fill_value=0).to_numpy()
    counts = {str(i): int(n) for i, n in enumerate(known) if n}
    other = int(counted.sum()) - int(known.sum())
    if other:
        counts[str(len(levels))] = other
    missing = int(values.isna().sum())
    if missing:
        counts[MISSING] = missing
    return counts


def open_counts(values: pd.Series) -> Counts:
    counts = {f"{VALUE_PREFIX}{k}": int(n) for k, n in values.value_counts().items()}
    missing = int(values.isna().sum())
    if missing:
        counts[MISSING] = missing
    return counts


def field_bins(contract: Contract, reference: pd.DataFrame) -> tuple[FieldBins, ...]:
    """Each feature's bins as its contract kind says (like `drift.feature_drift` judges it),
    then the score's."""
    fields = []
    for feature in contract.features:
        if feature.kind == "boolean":
            fields.append(FieldBins(feature.name, "levels", levels=BOOLEAN_LEVELS, boolean=True))
        elif feature.kind == "categorical" and feature.is_open:
            fields.append(FieldBins(feature.name, "open"))
        elif feature.kind == "categorical":
            fields.append(FieldBins(feature.name, "levels", levels=tuple(feature.categories or ())))
        else:
            values = pd.to_numeric(reference[feature.name], errors="coerce").to_numpy(float)
            fields.append(numeric_bins(feature.name, values))
    fields.append(numeric_bins(SCORE_COLUMN, reference[SCORE_COLUMN].to_numpy(dtype=float)))
    return tuple(fields)


def numeric_bins(name: str, reference: np.ndarray) -> FieldBins:
    return FieldBins(name, "numeric", edges=fine_edges(reference), deciles=psi_edges(reference))


def count_frame(fields: tuple[FieldBins, ...], frame: pd.DataFrame) -> dict[str, Counts]:
    """The counts of rows in `frame` (the reference, or a window in tests) per field."""
    counts: dict[str, Counts] = {}
    for bins in fields:
        values = frame[bins.name]
        if bins.kind == "numeric":
            as_float = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
            counts[bins.name] = numeric_counts(as_float, bins.edges)
        elif bins.kind == "open":
            counts[bins.name] = open_counts(values.astype(object))
        elif bins.boolean:
            counts[bins.name] = level_counts(pd.to_numeric(values, errors="coerce"), bins.levels)
        else:
            counts[bins.name] = level_counts(values.astype(object), bins.levels)
    return counts


def binned_reference(reference: pd.DataFrame, contract: Contract) -> BinnedReference:
    fields = field_bins(contract, reference)
    return BinnedReference(fields, count_frame(fields, reference))


def add_counts(total: dict[str, Counts], more: Mapping[str, Mapping[str, int]]) -> None:
    """Add `more` into `total` in place (a window grows tick by tick)."""
    for name, counts in more.items():
        into = total.setdefault(name, {})
        for key, n in counts.items():
            into[key] = into.get(key, 0) + int(n)


def counted_rows(counts: Mapping[str, Mapping[str, int]]) -> int:
    """Rows behind a set of counts: every row lands in one bin of the score (never missing)."""
    return int(sum(counts.get(SCORE_COLUMN, {}).values()))


def _dense(counts: Mapping[str, int], size: int) -> np.ndarray:
    dense = np.zeros(size, dtype=float)
    for key, n in counts.items():
        if key != MISSING:
            dense[int(key)] += n
    return dense


def binned_ks(ref: np.ndarray, cur: np.ndarray) -> tuple[float, float]:
    """Two-sample KS statistic at the bin edges and its asymptotic p-value (see module doc)."""
    n, m = ref.sum(), cur.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    gaps = np.abs(np.cumsum(ref)[:-1] / n - np.cumsum(cur)[:-1] / m)
    statistic = float(gaps.max()) if gaps.size else 0.0
    effective = n * m / (n + m)
    return statistic, float(stats.kstwo.sf(statistic, max(round(effective), 1)))


def _decile_index(bins: FieldBins) -> np.ndarray:
    """For each fine bin, its decile bin (every decile edge is also a fine edge)."""
    lower = np.concatenate([[-np.inf], np.asarray(bins.edges, dtype=float)])
    return np.searchsorted(np.asarray(bins.deciles, dtype=float), lower, side="right")


def binned_numeric_drift(
    bins: FieldBins, ref_counts: Counts, cur_counts: Counts, t: DriftThresholds
) -> FeatureDrift:
    size = len(bins.edges) + 1
    ref, cur = _dense(ref_counts, size), _dense(cur_counts, size)
    statistic, p_value = binned_ks(ref, cur)
    decile = _decile_index(bins)
    coarse_size = int(decile.max()) + 1
    ref_coarse = np.bincount(decile, weights=ref, minlength=coarse_size)
    cur_coarse = np.bincount(decile, weights=cur, minlength=coarse_size)
    index = psi(ref_coarse / max(ref.sum(), 1), cur_coarse / max(cur.sum(), 1))
    drifted = index >= t.psi and p_value < t.p_value
    return FeatureDrift(bins.name, "ks", statistic, p_value, index, bool(drifted))


def _open_levels(ref_counts: Counts, cur_counts: Counts) -> list[str]:
    both: dict[str, int] = {}
    add_counts({"x": both}, {"x": ref_counts})
    add_counts({"x": both}, {"x": cur_counts})
    observed = sorted(((n, key) for key, n in both.items() if key != MISSING), key=lambda x: -x[0])
    return [key for _, key in observed[:MAX_OPEN_LEVELS]]


def _level_vector(counts: Counts, keys: list[str]) -> np.ndarray:
    """Counts for `keys` plus one bucket for every other (non-missing) key."""
    known = np.array([counts.get(key, 0) for key in keys], dtype=float)
    total = sum(n for key, n in counts.items() if key != MISSING)
    return np.append(known, total - known.sum())


def binned_categorical_drift(
    bins: FieldBins, ref_counts: Counts, cur_counts: Counts, t: DriftThresholds
) -> FeatureDrift:
    if bins.kind == "open":
        keys = _open_levels(ref_counts, cur_counts)
        ref, cur = _level_vector(ref_counts, keys), _level_vector(cur_counts, keys)
    else:
        size = len(bins.levels) + 1
        ref, cur = _dense(ref_counts, size), _dense(cur_counts, size)
    index = psi(ref / max(ref.sum(), 1), cur / max(cur.sum(), 1))
    statistic, p_value = chi_square(ref, cur)
    drifted = index >= t.psi and p_value < t.p_value
    return FeatureDrift(bins.name, "chi2", statistic, p_value, index, bool(drifted))


def binned_drift(
    bins: FieldBins, ref_counts: Counts, cur_counts: Counts, t: DriftThresholds
) -> FeatureDrift:
    if bins.kind == "numeric":
        return binned_numeric_drift(bins, ref_counts, cur_counts, t)
    return binned_categorical_drift(bins, ref_counts, cur_counts, t)


def binned_report(
    reference: BinnedReference,
    window: Mapping[str, Counts],
    t: DriftThresholds,
    quality: dict[str, dict[str, float]] | None = None,
) -> DriftReport:
    """The `DriftReport` of a window given as counts in the reference's bins."""
    results = [
        binned_drift(bins, reference.counts.get(bins.name, {}), window.get(bins.name, {}), t)
        for bins in reference.fields
    ]
    return DriftReport(
        rows=counted_rows(window),
        features=results[:-1],
        score=results[-1],
        thresholds=t,
        quality=quality or {},
    )


def quality_from_bins(
    bins: pd.DataFrame, min_labels: int, contract: Contract
) -> dict[str, dict[str, float]]:
    """Live ROC AUC and Brier per model version from score bins of labelled predictions.

    `bins` has one row per (model_version, label, bin) with `rows`, `sum_p` and `sum_p2`:
    bin = floor(score * QUALITY_BINS); label in any spelling the contract's target accepts."""
    quality: dict[str, dict[str, float]] = {}
    if bins.empty:
        return quality
    target = contract.target
    encoded = bins["label"].map(target.encode)
    bins = bins.assign(positive=encoded)[encoded.notna()]
    for version, rows in bins.groupby("model_version"):
        positive = rows[rows["positive"] == 1]
        negative = rows[rows["positive"] == 0]
        n_pos, n_neg = float(positive["rows"].sum()), float(negative["rows"].sum())
        entry = {"labels": n_pos + n_neg}
        if entry["labels"] >= min_labels and n_pos > 0 and n_neg > 0:
            entry["roc_auc"] = _binned_auc(positive, negative, n_pos, n_neg)
            squared = positive["sum_p2"].sum() - 2 * positive["sum_p"].sum() + n_pos
            entry["brier"] = float((squared + negative["sum_p2"].sum()) / (n_pos + n_neg))
        quality[str(version)] = entry
    return quality


def _binned_auc(positive: pd.DataFrame, negative: pd.DataFrame, n_pos: float, n_neg: float):
    size = QUALITY_BINS + 1
    pos = np.bincount(positive["bin"].clip(0, QUALITY_BINS), positive["rows"], minlength=size)
    neg = np.bincount(negative["bin"].clip(0, QUALITY_BINS), negative["rows"], minlength=size)
    below = np.cumsum(neg) - neg  # negatives in lower bins
    return float(((pos * below).sum() + 0.5 * (pos * neg).sum()) / (n_pos * n_neg))
