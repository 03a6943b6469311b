"""Probability calibration judged on cross-validation: calibrate only when it pays.

The served probability drives retention spend, so it should mean what it says. Sigmoid (Platt)
and isotonic calibration are each cross-fitted on the chosen pipeline's out-of-fold
probabilities (the calibrator of a fold never sees that fold) and compared with the raw
probabilities by Brier score; the model is wrapped only when one of them lowers it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from sklearn.calibration import CalibratedClassifierCV, calibration_curve
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss
from sklearn.pipeline import Pipeline

Method = Literal["sigmoid", "isotonic"]
METHODS: tuple[Method, ...] = ("sigmoid", "isotonic")
RAW = "none"  # the method name of an uncalibrated model
RELIABILITY_BINS = 10
_EDGE = 1e-6  # keeps log-odds finite for probabilities of exactly 0 or 1


@dataclass(frozen=True)
class ReliabilityCurve:
    """Mean predicted probability vs observed churn rate per quantile bin."""

    predicted: tuple[float, ...]
    observed: tuple[float, ...]


@dataclass(frozen=True)
class CalibrationReport:
    """The CV Brier of raw, sigmoid and isotonic probabilities, their reliability curves, and
    the method the served model uses (`none` unless it beat the raw Brier)."""

    method: str
    brier: dict[str, float]  # "none" | "sigmoid" | "isotonic" -> CV Brier
    curves: dict[str, ReliabilityCurve]

    @property
    def calibrated(self) -> bool:
        return self.method != RAW

    def facts(self) -> dict[str, object]:
        """JSON-ready summary (MLflow artifact, model card)."""
        return {
            "method": self.method,
            "brier": {name: round(value, 5) for name, value in self.brier.items()},
            "curves": {
                name: {"predicted": list(curve.predicted), "observed": list(curve.observed)}
                for name, curve in self.curves.items()
            },
        }


def _log_odds(scores: np.ndarray) -> np.ndarray:
    clipped = np.clip(scores, _EDGE, 1 - _EDGE)
    return np.log(clipped / (1 - clipped)).reshape(-1, 1)


def _fit_predict(method: Method, scores: np.ndarray, y: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Calibrate `new` with a calibrator fitted on (scores, y). Sigmoid is Platt scaling on the
    log-odds (what `CalibratedClassifierCV` fits on a boosting or logistic model's decision
    function); isotonic is invariant to that monotone transform."""
    if method == "sigmoid":
        platt = LogisticRegression(C=1e6).fit(_log_odds(scores), y)
        return platt.predict_proba(_log_odds(new))[:, 1]
    isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, y)
    return isotonic.predict(new)


def cross_fitted(
    method: Method, scores: np.ndarray, y: np.ndarray, fold_of_row: np.ndarray
) -> np.ndarray:
    """Each fold's scores calibrated by a calibrator fitted on the other folds."""
    calibrated = np.empty(len(scores), dtype=np.float64)
    for fold in np.unique(fold_of_row):
        held_out = fold_of_row == fold
        calibrated[held_out] = _fit_predict(
            method, scores[~held_out], y[~held_out], scores[held_out]
        )
    return calibrated


def reliability(
    y: np.ndarray, scores: np.ndarray, bins: int = RELIABILITY_BINS
) -> ReliabilityCurve:
    observed, predicted = calibration_curve(y, scores, n_bins=bins, strategy="quantile")
    return ReliabilityCurve(
        predicted=tuple(round(float(p), 4) for p in predicted),
        observed=tuple(round(float(o), 4) for o in observed),
    )


def assess(y: np.ndarray, out_of_fold: np.ndarray, fold_of_row: np.ndarray) -> CalibrationReport:
    """Compare raw, sigmoid and isotonic probabilities on CV; pick the lowest Brier, and a
    calibration method only if it is strictly lower than the raw one."""
    probabilities = {RAW: out_of_fold}
    for method in METHODS:
        probabilities[method] = cross_fitted(method, out_of_fold, y, fold_of_row)
    brier = {name: float(brier_score_loss(y, p)) for name, p in probabilities.items()}
    best = min(METHODS, key=lambda method: brier[method])
    return CalibrationReport(
        method=best if brier[best] < brier[RAW] else RAW,
        brier=brier,
        curves={name: reliability(y, p) for name, p in probabilities.items()},
    )


def with_calibration(pipeline: Pipeline, method: str, folds: int) -> Pipeline:
    """The unfitted pipeline with its final estimator wrapped in a `CalibratedClassifierCV`
    (`ensemble=False`: one estimator fitted on all rows plus one calibrator fitted on its
    out-of-fold scores, so serving still calls a single model). `none` leaves it as it is."""
    if method == RAW:
        return pipeline
    if method not in METHODS:
        raise ValueError(f"unknown calibration method {method!r}; choose none, sigmoid, isotonic")
    *head, (name, estimator) = pipeline.steps
    calibrated = CalibratedClassifierCV(estimator, method=method, cv=folds, ensemble=False)
    return Pipeline([*head, (name, calibrated)])
