"""Hyperparameter tuning with Optuna under a time budget, scored by CV on the training split.

Seeded TPE, one trial at a time, so a study with a fixed trial count is reproducible (a time
budget alone is not: how many trials fit depends on the machine). The first trial is the
recipe's starting params, so tuning can only keep or beat them on CV. The study is written to
an Optuna journal file whose text the caller stores next to the MLflow run; `load_study` reads
it back.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna
import pandas as pd
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from churnops.contract import Contract
from churnops.model import recipes
from churnops.model.recipes import RecipeParams
from churnops.model.selection import CrossValidation, cross_validate

Log = Callable[[str], None]
JOURNAL_NAME = "study.journal"
CV_ROC_AUC = "cv_roc_auc"


@dataclass(frozen=True)
class TuningResult:
    """The study's outcome: the best params and their CV, every trial, and the journal."""

    recipe: str
    study_name: str
    best: CrossValidation
    trials: pd.DataFrame  # number, state, cv_roc_auc, cv_brier, seconds, one column per param
    journal: str  # the Optuna journal file's text
    seconds: float

    def rows(self) -> list[dict[str, object]]:
        return self.trials.to_dict(orient="records")


def _trials_table(study: optuna.Study) -> pd.DataFrame:
    rows = []
    for trial in study.trials:
        seconds = (
            (trial.datetime_complete - trial.datetime_start).total_seconds()
            if trial.datetime_complete and trial.datetime_start
            else None
        )
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                CV_ROC_AUC: None if trial.value is None else round(trial.value, 4),
                "cv_brier": trial.user_attrs.get("cv_brier"),
                "seconds": None if seconds is None else round(seconds, 2),
                **trial.params,
            }
        )
    return pd.DataFrame(rows)


def load_study(journal_path: Path, study_name: str) -> optuna.Study:
    """A persisted study back from its journal file (e.g. downloaded from the MLflow run)."""
    storage = JournalStorage(JournalFileBackend(str(journal_path)))
    return optuna.load_study(study_name=study_name, storage=storage)


def tune(
    train: pd.DataFrame,
    recipe: str,
    start: RecipeParams | None = None,
    *,
    folds: int,
    seed: int,
    budget_seconds: float,
    contract: Contract,
    max_trials: int | None = None,
    log: Log | None = None,
) -> TuningResult:
    """Search the recipe's declared space for the best mean CV ROC AUC, starting new trials
    until `budget_seconds` have passed (a running trial finishes) or `max_trials` ran."""
    entry = recipes.lookup(recipe)
    if entry.space is None:
        raise ValueError(f"recipe {recipe!r} declares no search space")
    if budget_seconds <= 0:
        raise ValueError("tuning needs a positive time budget")
    space = entry.space
    baseline = entry.parse() if start is None else start
    best: dict[str, CrossValidation] = {}

    def objective(trial: optuna.Trial) -> float:
        params = entry.parse({**baseline.model_dump(), **space(trial)})
        result = cross_validate(train, recipe, params, folds=folds, seed=seed, contract=contract)
        trial.set_user_attr("cv_brier", round(result.brier_mean, 5))
        if "result" not in best or result.roc_auc_mean > best["result"].roc_auc_mean:
            best["result"] = result
        if log:
            log(
                f"trial {trial.number} of {recipe}: CV ROC AUC {result.roc_auc_mean:.4f} "
                f"with {trial.params}"
            )
        return result.roc_auc_mean

    # Optuna logs every trial at INFO on its own logger; `log` above reports them instead.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_name = f"{recipe}-seed{seed}"
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        journal = Path(tmp) / JOURNAL_NAME
        study = optuna.create_study(
            study_name=study_name,
            direction="maximize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            storage=JournalStorage(JournalFileBackend(str(journal))),
        )
        study.enqueue_trial(_starting_values(space, baseline))
        study.optimize(objective, n_trials=max_trials, timeout=budget_seconds)
        trials = _trials_table(study)  # read from the journal, so while it exists
        text = journal.read_text(encoding="utf-8")
    return TuningResult(
        recipe=recipe,
        study_name=study_name,
        best=best["result"],
        trials=trials,
        journal=text,
        seconds=time.perf_counter() - started,
    )


def _starting_values(space: recipes.SearchSpace, baseline: RecipeParams) -> dict[str, object]:
    """The baseline's values of the parameters the space searches (its first trial)."""
    searched = space(optuna.trial.FixedTrial(baseline.model_dump()))
    return {name: getattr(baseline, name) for name in searched}
