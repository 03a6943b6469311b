"""Skip the boosted trees' own input encoding on matrices that are already encoded.

`HistGradientBoostingClassifier` fitted with categorical features keeps a private column
transformer that re-encodes its categorical columns (our ordinal codes) to its own codes on
every call; with its per-call validation it is ~90% of a one-row call (measured in
benchmarks/serving.py's profile). `lean_estimator` returns a copy whose private encoder is a
plain numpy lookup doing the same mapping. The scorers that use it check the result against the
untouched pipeline before serving it (`scoring.scorer`), so a scikit-learn release that changes
these internals falls back to the plain call instead of scoring wrongly.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier


class _CodeLookup:
    """The trees' private encoder as numpy lookups: a categorical column's value becomes its
    position among the categories seen at fit, an unseen or missing value NaN; numeric columns
    pass through. Output columns are categorical first, then numeric, as the encoder's."""

    def __init__(self, categorical: np.ndarray, categories: list[np.ndarray]) -> None:
        self.categorical = np.flatnonzero(categorical)
        self.numeric = np.flatnonzero(~categorical)
        self.categories = [values[~np.isnan(values)] for values in categories]

    def transform(self, matrix: np.ndarray) -> np.ndarray:
        matrix = np.asarray(matrix, dtype=np.float64)
        out = np.empty(matrix.shape, dtype=np.float64)
        for j, (column, known) in enumerate(zip(self.categorical, self.categories, strict=True)):
            values = matrix[:, column]
            at = np.minimum(np.searchsorted(known, values), max(len(known) - 1, 0))
            found = (known[at] == values) if len(known) else np.zeros(len(values), bool)
            out[:, j] = np.where(found, at, np.nan)
        out[:, len(self.categorical) :] = matrix[:, self.numeric]
        return out


def _lean_trees(trees: HistGradientBoostingClassifier) -> HistGradientBoostingClassifier | None:
    encoder = getattr(trees, "_preprocessor", None)
    if encoder is None:
        return trees  # no categorical features: nothing is re-encoded
    try:
        categorical = np.asarray(trees.is_categorical_, dtype=bool)
        categories = list(encoder.named_transformers_["encoder"].categories_)
    except (AttributeError, KeyError, TypeError):
        return None
    if len(categories) != int(categorical.sum()):
        return None
    lean = copy.copy(trees)
    lean._preprocessor = _CodeLookup(categorical, categories)
    return lean


def lean_estimator(estimator: Any) -> Any | None:
    """A copy of the boosted trees (bare, or inside a fitted `CalibratedClassifierCV`) that
    takes ordinal-encoded matrices without re-encoding them; None when the estimator is
    anything else or its internals are not the ones this shortcut knows."""
    if isinstance(estimator, HistGradientBoostingClassifier):
        return _lean_trees(estimator)
    if isinstance(estimator, CalibratedClassifierCV):
        pairs = []
        for pair in getattr(estimator, "calibrated_classifiers_", []):
            trees = getattr(pair, "estimator", None)
            lean = _lean_trees(trees) if isinstance(trees, HistGradientBoostingClassifier) else None
            if lean is None:
                return None
            pair = copy.copy(pair)
            pair.estimator = lean
            pairs.append(pair)
        if not pairs:
            return None
        calibrated = copy.copy(estimator)
        calibrated.calibrated_classifiers_ = pairs
        return calibrated
    return None
