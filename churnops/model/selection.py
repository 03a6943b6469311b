"""Recipe selection by stratified k-fold cross-validation on the training split only.

The holdout stays untouched until the chosen candidate is evaluated (and gated) on it, so the
choice of recipe, its tuning and its calibration never peek at the numbers that judge them.
Every fold's out-of-fold probabilities are kept: calibration is assessed on them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from churnops.contract import Contract
from churnops.model import recipes
from churnops.model.recipes import RecipeParams
from churnops.model.scoring import features, labels

Log = Callable[[str], None]
ParamsFor = Callable[[str], RecipeParams]


@dataclass(frozen=True)
class CrossValidation:
    """One recipe (with given params) scored fold by fold on the training split."""

    recipe: str
    params: RecipeParams
    roc_auc: tuple[float, ...]  # per fold
    brier: tuple[float, ...]  # per fold
    fit_seconds: float  # all folds
    out_of_fold: np.ndarray  # each row's probability from the model that did not see it
    fold_of_row: np.ndarray  # which fold held each row out

    @property
    def roc_auc_mean(self) -> float:
        return float(np.mean(self.roc_auc))

    @property
    def roc_auc_std(self) -> float:
        return float(np.std(self.roc_auc))

    @property
    def brier_mean(self) -> float:
        return float(np.mean(self.brier))

    def row(self) -> dict[str, object]:
        """The recipe's line of the CV table."""
        return {
            "recipe": self.recipe,
            "roc_auc_mean": round(self.roc_auc_mean, 4),
            "roc_auc_std": round(self.roc_auc_std, 4),
            "brier_mean": round(self.brier_mean, 4),
            "fit_seconds": round(self.fit_seconds, 2),
        }


def stratified_folds(y: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """The fold (0..folds-1) that holds each row out: shuffled, seeded, churn rate kept."""
    if folds < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {folds}")
    fold_of_row = np.empty(len(y), dtype=np.int64)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fold, (_, held_out) in enumerate(splitter.split(np.zeros(len(y)), y)):
        fold_of_row[held_out] = fold
    return fold_of_row


def cross_validate(
    train: pd.DataFrame,
    recipe: str,
    params: RecipeParams | None,
    *,
    folds: int,
    seed: int,
    contract: Contract,
) -> CrossValidation:
    """Fit the recipe on k-1 folds and score the held-out one, k times (same folds for every
    recipe and trial given the seed, so their scores are paired)."""
    x, y = features(train, contract), labels(train, contract)
    chosen = recipes.lookup(recipe).parse() if params is None else params
    unfitted = recipes.build_pipeline(recipe, chosen, seed=seed, contract=contract)
    fold_of_row = stratified_folds(y, folds, seed)
    out_of_fold = np.empty(len(y), dtype=np.float64)
    aucs, briers, seconds = [], [], 0.0
    for fold in range(folds):
        held_out = fold_of_row == fold
        started = time.perf_counter()
        model = clone(unfitted).fit(x[~held_out], y[~held_out])
        seconds += time.perf_counter() - started
        scores = model.predict_proba(x[held_out])[:, 1]
        out_of_fold[held_out] = scores
        aucs.append(float(roc_auc_score(y[held_out], scores)))
        briers.append(float(brier_score_loss(y[held_out], scores)))
    return CrossValidation(
        recipe=recipe,
        params=chosen,
        roc_auc=tuple(aucs),
        brier=tuple(briers),
        fit_seconds=seconds,
        out_of_fold=out_of_fold,
        fold_of_row=fold_of_row,
    )


@dataclass(frozen=True)
class Selection:
    """Every evaluated recipe's CV scores and the winner (best mean ROC AUC)."""

    results: tuple[CrossValidation, ...]

    @property
    def best(self) -> CrossValidation:
        return max(self.results, key=lambda result: result.roc_auc_mean)

    def rows(self) -> list[dict[str, object]]:
        """The CV table, best first, as plain rows (JSON, Markdown, the model card)."""
        ranked = sorted(self.results, key=lambda result: -result.roc_auc_mean)
        return [{**result.row(), "chosen": result is self.best} for result in ranked]

    def table(self) -> pd.DataFrame:
        return pd.DataFrame(self.rows())


def select_recipe(
    train: pd.DataFrame,
    candidates: Sequence[str],
    *,
    folds: int,
    seed: int,
    contract: Contract,
    params_for: ParamsFor | None = None,
    log: Log | None = None,
) -> Selection:
    """Cross-validate each candidate recipe (with `params_for(name)`, else its defaults)."""
    if not candidates:
        raise ValueError("no recipe to select from")
    results = []
    for name in candidates:
        params = params_for(name) if params_for else None
        result = cross_validate(train, name, params, folds=folds, seed=seed, contract=contract)
        if log:
            log(
                f"CV {name}: ROC AUC {result.roc_auc_mean:.4f} ± {result.roc_auc_std:.4f}, "
                f"Brier {result.brier_mean:.4f} ({folds} folds, {result.fit_seconds:.1f} s)"
            )
        results.append(result)
    return Selection(tuple(results))
