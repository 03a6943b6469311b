"""The plots people look at, drawn from the domain's results: evaluation curves, feature
importance and drift per feature. Only orchestration draws; the domain core stays free of
matplotlib so serving never loads it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from sklearn.calibration import calibration_curve
from sklearn.metrics import confusion_matrix, precision_recall_curve, roc_curve

from churnops.contract import DECISION_THRESHOLD
from churnops.model.calibration import CalibrationReport
from churnops.model.economics import Decision, ProfitCurve
from churnops.model.evaluation import Evaluation
from churnops.monitoring.drift import DriftReport


def _figure() -> tuple[Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(4.8, 4.0), dpi=100)
    return fig, ax


def roc_figure(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    fpr, tpr, _ = roc_curve(ev.y_true, ev.y_score)
    ax.plot(fpr, tpr, label=f"model (AUC {ev.metrics['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="chance")
    ax.set(xlabel="False positive rate", ylabel="True positive rate", title="ROC curve")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def pr_figure(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    precision, recall, _ = precision_recall_curve(ev.y_true, ev.y_score)
    ax.plot(recall, precision, label=f"model (AP {ev.metrics['pr_auc']:.3f})")
    ax.axhline(ev.y_true.mean(), linestyle="--", color="grey", label="base rate")
    ax.set(xlabel="Recall", ylabel="Precision", title="Precision-recall curve")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def calibration_figure(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    observed, predicted = calibration_curve(ev.y_true, ev.y_score, n_bins=10, strategy="quantile")
    ax.plot(predicted, observed, marker="o", label=f"model (Brier {ev.metrics['brier']:.3f})")
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set(xlabel="Predicted churn probability", ylabel="Observed churn rate", title="Calibration")
    ax.legend(loc="upper left")
    fig.tight_layout()
    return fig


def confusion_figure(ev: Evaluation) -> Figure:
    fig, ax = _figure()
    y_pred = (ev.y_score >= DECISION_THRESHOLD).astype(int)
    matrix = confusion_matrix(ev.y_true, y_pred, labels=[0, 1])
    ax.imshow(matrix, cmap="Blues")
    for (row, col), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, f"{count:,}", ha="center", va="center", color=colour)
    ax.set_xticks([0, 1], labels=["stays", "churns"])
    ax.set_yticks([0, 1], labels=["stays", "churns"])
    ax.set(xlabel="Predicted", ylabel="Actual", title=f"Confusion matrix @ {DECISION_THRESHOLD}")
    fig.tight_layout()
    return fig


def evaluation_figures(ev: Evaluation) -> dict[str, Figure]:
    """File name → figure; the caller logs them and closes them."""
    return {
        "roc_curve.png": roc_figure(ev),
        "pr_curve.png": pr_figure(ev),
        "calibration.png": calibration_figure(ev),
        "confusion_matrix.png": confusion_figure(ev),
    }


def reliability_figure(report: CalibrationReport) -> Figure:
    """Out-of-fold reliability of the raw, sigmoid and isotonic probabilities (CV Brier in the
    legend, the served one marked)."""
    fig, ax = _figure()
    for name, curve in report.curves.items():
        served = " (served)" if name == report.method else ""
        label = f"{name}{served}: Brier {report.brier[name]:.4f}"
        ax.plot(curve.predicted, curve.observed, marker="o", label=label)
    ax.plot([0, 1], [0, 1], "--", color="grey", label="perfectly calibrated")
    ax.set(
        xlabel="Predicted churn probability",
        ylabel="Observed churn rate",
        title="Reliability on cross-validation",
    )
    ax.legend(loc="upper left", fontsize="small")
    fig.tight_layout()
    return fig


def drift_figure(report: DriftReport) -> Figure:
    """PSI per feature (and for the score), drifted ones highlighted, with the configured
    thresholds the report was judged by: a dashed line for features, a tick across the
    score's bar for the score."""
    rows = [*report.features, report.score]
    t = report.thresholds
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    colours = ["tab:red" if row.drifted else "tab:blue" for row in rows]
    ax.barh([row.feature for row in rows], [row.psi for row in rows], color=colours)
    ax.axvline(t.psi, linestyle="--", color="grey", label=f"feature PSI {t.psi:g}")
    score_row = len(rows) - 1
    ax.vlines(
        t.score_psi,
        score_row - 0.45,
        score_row + 0.45,
        colors="black",
        linewidth=2,
        zorder=3,
        label=f"score PSI {t.score_psi:g}",
    )
    ax.set(xlabel="Population stability index", title="Drift per feature (red = drifted)")
    ax.invert_yaxis()
    ax.legend(loc="best")
    fig.tight_layout()
    return fig


def importance_figure(importance: pd.Series, top: int = 12) -> Figure:
    shown = importance.head(top)
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    ax.barh(shown.index, shown.to_numpy(), color="tab:blue")
    ax.invert_yaxis()
    ax.set(xlabel="ROC AUC lost when shuffled", title="Feature importance (permutation)")
    fig.tight_layout()
    return fig


def profit_figure(curve: ProfitCurve, decision: Decision) -> Figure:
    """Expected profit per customer against the share of customers contacted, with the served
    threshold and the default 0.5 marked: how much the campaign gains, or loses, by each."""
    fig, ax = _figure()
    ax.plot(100 * curve.targeted_share, curve.profit_per_customer, label="expected profit")
    ax.axhline(0, linestyle="--", color="grey", label="break-even")
    default_share, default_profit = curve.point_at(DECISION_THRESHOLD)
    ax.plot(
        100 * default_share,
        default_profit,
        "s",
        color="tab:grey",
        label=f"threshold {DECISION_THRESHOLD:g}: {default_profit:.3g} per customer",
    )
    if decision.targeted_share is None or decision.expected_profit_per_customer is None:
        share, profit = curve.point_at(decision.threshold)
    else:
        share, profit = decision.targeted_share, decision.expected_profit_per_customer
    ax.plot(
        100 * share,
        profit,
        "o",
        color="tab:red",
        label=f"chosen threshold {decision.threshold:.4g}: {profit:.3g} per customer",
    )
    ax.set(
        xlabel="Customers contacted (%)",
        ylabel="Expected profit per customer",
        title="Retention campaign profit",
    )
    ax.legend(loc="best", fontsize="small")
    fig.tight_layout()
    return fig


def score_histogram_figure(counts: np.ndarray, threshold: float, contacted: int) -> Figure:
    """Churn probabilities of the scored customers (`counts` per equal bin over [0, 1], as
    batch scoring accumulates them chunk by chunk) and the threshold that splits them into
    `contacted` customers and the rest."""
    fig, ax = _figure()
    counts = np.asarray(counts, dtype=np.int64)
    edges = np.linspace(0, 1, len(counts) + 1)
    ax.bar(edges[:-1], counts, width=np.diff(edges), align="edge", color="tab:blue")
    total = int(counts.sum())
    share = f" ({contacted / total:.1%} contacted)" if total else ""
    ax.axvline(
        threshold, linestyle="--", color="tab:red", label=f"threshold {threshold:.4g}{share}"
    )
    ax.set(xlabel="Churn probability", ylabel="Customers", title="Churn scores")
    ax.legend(loc="upper right")
    fig.tight_layout()
    return fig
