"""From a training split to a fitted candidate: select a recipe by CV, tune it when a budget
allows, decide on calibration by CV, then fit the final pipeline on the whole training split.

Everything here sees the training split only; the holdout judges the result afterwards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sklearn.pipeline import Pipeline

from churnops.contract import Contract
from churnops.model import recipes
from churnops.model.calibration import CalibrationReport, assess, with_calibration
from churnops.model.recipes import RecipeParams
from churnops.model.scoring import features, labels
from churnops.model.selection import CrossValidation, Selection, select_recipe
from churnops.model.tuning import TuningResult, tune

Log = Callable[[str], None]


@dataclass(frozen=True)
class CandidatePolicy:
    """How a candidate is chosen: `recipe` is `auto` or a pinned registered name."""

    recipe: str
    folds: int
    seed: int
    tuning_budget_seconds: float = 0.0  # 0: no tuning
    tuning_max_trials: int | None = None  # with a budget: also stop after this many trials


@dataclass(frozen=True)
class CandidateReport:
    """The fitted candidate and what chose it: the CV table, the study and calibration."""

    pipeline: Pipeline
    recipe: str
    params: RecipeParams
    selection: Selection
    tuning: TuningResult | None
    calibration: CalibrationReport
    cv: CrossValidation  # the chosen (tuned) params' CV, before calibration

    def metrics(self) -> dict[str, float]:
        """CV figures for the run's metrics (prefixed so they never clash with holdout ones)."""
        metrics = {
            "cv_roc_auc": self.cv.roc_auc_mean,
            "cv_roc_auc_std": self.cv.roc_auc_std,
            "cv_brier": self.cv.brier_mean,
            **{f"cv_brier_{name}": value for name, value in self.calibration.brier.items()},
        }
        if self.tuning is not None:
            metrics["tuning_trials"] = float(len(self.tuning.trials))
            metrics["tuning_seconds"] = self.tuning.seconds
        return metrics


def fit_candidate(
    train: pd.DataFrame,
    policy: CandidatePolicy,
    params_for: Callable[[str], RecipeParams] | None = None,
    log: Log | None = None,
    *,
    contract: Contract,
) -> CandidateReport:
    """Selection -> tuning (if budgeted and the recipe has a space) -> calibration -> fit.
    `params_for(name)` gives each recipe's starting params (run config); defaults otherwise."""
    selection = select_recipe(
        train,
        recipes.candidates(policy.recipe),
        folds=policy.folds,
        seed=policy.seed,
        contract=contract,
        params_for=params_for,
        log=log,
    )
    chosen = selection.best
    if log:
        log(f"chose {chosen.recipe} (CV ROC AUC {chosen.roc_auc_mean:.4f})")
    tuning = None
    if policy.tuning_budget_seconds > 0 and recipes.lookup(chosen.recipe).space is not None:
        tuning = tune(
            train,
            chosen.recipe,
            chosen.params,
            folds=policy.folds,
            seed=policy.seed,
            budget_seconds=policy.tuning_budget_seconds,
            contract=contract,
            max_trials=policy.tuning_max_trials,
            log=log,
        )
        chosen = tuning.best
    y = labels(train, contract)
    calibration = assess(y, chosen.out_of_fold, chosen.fold_of_row)
    if log:
        briers = ", ".join(f"{name} {value:.5f}" for name, value in calibration.brier.items())
        log(f"calibration: {calibration.method} (CV Brier {briers})")
    unfitted = recipes.build_pipeline(
        chosen.recipe, chosen.params, seed=policy.seed, contract=contract
    )
    pipeline = with_calibration(unfitted, calibration.method, policy.folds)
    pipeline.fit(features(train, contract), y)
    return CandidateReport(
        pipeline=pipeline,
        recipe=chosen.recipe,
        params=chosen.params,
        selection=selection,
        tuning=tuning,
        calibration=calibration,
        cv=chosen,
    )
