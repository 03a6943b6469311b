"""Holdout metrics: ranking quality, calibration and the scores at the serving threshold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    roc_auc_score,
)

from churnops.contract import DECISION_THRESHOLD


@dataclass(frozen=True)
class Evaluation:
    y_true: np.ndarray
    y_score: np.ndarray
    metrics: dict[str, float]


def evaluate_scores(y_true: np.ndarray, y_score: np.ndarray) -> Evaluation:
    """Threshold-free ranking metrics plus F1/accuracy at the serving threshold."""
    if len(np.unique(y_true)) < 2:
        raise ValueError("holdout must contain both churners and non-churners")
    y_pred = (y_score >= DECISION_THRESHOLD).astype(int)
    metrics = {
        "roc_auc": float(roc_auc_score(y_true, y_score)),
        "pr_auc": float(average_precision_score(y_true, y_score)),
        "f1": float(f1_score(y_true, y_pred)),
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "brier": float(brier_score_loss(y_true, y_score)),
        "log_loss": float(log_loss(y_true, np.clip(y_score, 1e-7, 1 - 1e-7))),
        "holdout_rows": float(len(y_true)),
    }
    return Evaluation(y_true=y_true, y_score=y_score, metrics=metrics)
