"""Model quality benchmark: cross-validated and holdout ROC AUC of every registered recipe, a plain
one-hot logistic regression baseline, each recipe tuned for a time budget, and the candidate
the training graph would train (`auto` selection, tuning, calibration).

    python -m benchmarks.model_quality [--rows 7043] [--budget SECONDS] [--folds K]

The data is a Telco-schema dataset of our own making (`churnops.data.synthetic`, fixed seed),
7,043 rows by default like the public IBM file, cleaned against the contract and split the way
the pipeline splits it. CV is stratified k-fold on the training split only; the holdout is
touched once per model. Prints a markdown table and writes JSON + markdown.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder

from benchmarks.common import machine, markdown_table, write_report
from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import Split, stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, selection, tuning
from churnops.model.recipes import AUTO
from churnops.model.scoring import churn_probability, features, labels
from churnops.model.training import CandidatePolicy, fit_candidate
from churnops.settings import Settings

TELCO_ROWS = 7_043
SEED = 42
HOLDOUT_FRACTION = 0.2
# The pipeline's own default, so the candidate row is what training would produce.
FOLDS: int = Settings.model_fields["cv_folds"].default
BASELINE = "baseline: one-hot logistic regression"
# The synthetic data's schema: the shipped Telco contract.
CONTRACT = telco_contract()
console = Console(stderr=True)


@dataclass(frozen=True)
class Row:
    """One model's figures: CV on the training split, then one look at the holdout."""

    model: str
    kind: str  # recipe | baseline | tuned | candidate
    cv_auc_mean: float
    cv_auc_std: float
    holdout_auc: float
    holdout_brier: float
    fit_seconds: float
    note: str = ""


def baseline_pipeline() -> Pipeline:
    """What anyone would try first: one-hot categories, numbers as they are (missing filled)."""
    preprocess = ColumnTransformer(
        [
            ("categorical", OneHotEncoder(handle_unknown="ignore"), list(CONTRACT.categorical)),
            ("numeric", SimpleImputer(strategy="median"), list(CONTRACT.numeric)),
        ]
    )
    return Pipeline([("preprocess", preprocess), ("model", LogisticRegression(max_iter=5000))])


def dataset(rows: int, seed: int = SEED) -> Split:
    """Synthetic Telco-schema customers, cleaned and split like the pipeline does."""
    raw = generate_customers(rows, seed=seed)
    cleaned = clean_customers(raw, f"synthetic({rows}, seed={seed})", CONTRACT).frame
    return stratified_split(cleaned, CONTRACT, HOLDOUT_FRACTION, seed)


def baseline_cv(train: pd.DataFrame, folds: int, seed: int) -> np.ndarray:
    """The baseline's ROC AUC per fold, on the same folds the recipes are scored on."""
    x, y = features(train, CONTRACT), labels(train, CONTRACT)
    fold_of_row = selection.stratified_folds(y, folds, seed)
    aucs = []
    for fold in range(folds):
        held_out = fold_of_row == fold
        model = baseline_pipeline().fit(x[~held_out], y[~held_out])
        aucs.append(roc_auc_score(y[held_out], model.predict_proba(x[held_out])[:, 1]))
    return np.asarray(aucs)


def holdout_row(
    name: str, kind: str, pipeline: Pipeline, cv_aucs: Sequence[float], split: Split
) -> Row:
    """Fit `pipeline` on the whole training split and look at the holdout once."""
    started = time.perf_counter()
    pipeline.fit(features(split.train, CONTRACT), labels(split.train, CONTRACT))
    seconds = time.perf_counter() - started
    y = labels(split.holdout, CONTRACT)
    scores = churn_probability(pipeline, split.holdout, CONTRACT)
    return Row(
        model=name,
        kind=kind,
        cv_auc_mean=float(np.mean(cv_aucs)),
        cv_auc_std=float(np.std(cv_aucs)),
        holdout_auc=float(roc_auc_score(y, scores)),
        holdout_brier=float(brier_score_loss(y, scores)),
        fit_seconds=seconds,
    )


def _trials_note(count: int) -> str:
    return f"{count} trial{'' if count == 1 else 's'}"


def tuned_rows(split: Split, budget: float, folds: int, seed: int) -> list[Row]:
    """Each recipe with a search space, tuned on CV for `budget` seconds (not calibrated)."""
    rows = []
    for name, recipe in recipes.RECIPES.items():
        if recipe.space is None:
            continue
        console.print(f"tuning {name} for {budget:g} s")
        study = tuning.tune(
            split.train, name, folds=folds, seed=seed, budget_seconds=budget, contract=CONTRACT
        )
        pipeline = recipes.build_pipeline(name, study.best.params, seed=seed, contract=CONTRACT)
        row = holdout_row(f"{name} (tuned)", "tuned", pipeline, study.best.roc_auc, split)
        rows.append(replace(row, note=_trials_note(len(study.trials))))
    return rows


def candidate_row(split: Split, budget: float, folds: int, seed: int) -> Row:
    """What the training graph trains with `CHURNOPS_RECIPE=auto` and this budget: the recipe
    chosen by CV, tuned, calibrated when CV says so. Its CV figure is before calibration."""
    policy = CandidatePolicy(AUTO, folds, seed, tuning_budget_seconds=budget)
    started = time.perf_counter()
    report = fit_candidate(split.train, policy, contract=CONTRACT)
    seconds = time.perf_counter() - started
    y = labels(split.holdout, CONTRACT)
    scores = churn_probability(report.pipeline, split.holdout, CONTRACT)
    trials = f", {_trials_note(len(report.tuning.trials))}" if report.tuning else ""
    return Row(
        model=f"candidate ({AUTO})",
        kind="candidate",
        cv_auc_mean=report.cv.roc_auc_mean,
        cv_auc_std=report.cv.roc_auc_std,
        holdout_auc=float(roc_auc_score(y, scores)),
        holdout_brier=float(brier_score_loss(y, scores)),
        fit_seconds=seconds,
        note=f"{report.recipe}{trials}, calibration {report.calibration.method}",
    )


def run(rows: int, budget: float, folds: int, seed: int = SEED) -> dict[str, object]:
    split = dataset(rows, seed)
    results: list[Row] = []
    for name in recipes.RECIPES:
        console.print(f"recipe {name}: {folds}-fold CV + holdout")
        cv = selection.cross_validate(
            split.train, name, None, folds=folds, seed=seed, contract=CONTRACT
        )
        pipeline = recipes.build_pipeline(name, seed=seed, contract=CONTRACT)
        results.append(holdout_row(name, "recipe", pipeline, cv.roc_auc, split))
    console.print("baseline: one-hot logistic regression")
    baseline = baseline_cv(split.train, folds, seed)
    results.append(holdout_row(BASELINE, "baseline", baseline_pipeline(), baseline, split))
    if budget > 0:
        results += tuned_rows(split, budget, folds, seed)
    console.print(f"candidate: {AUTO} selection, tuning budget {budget:g} s, calibration")
    results.append(candidate_row(split, budget, folds, seed))
    return {
        "machine": machine(),
        "rows": rows,
        "train_rows": len(split.train),
        "holdout_rows": len(split.holdout),
        "holdout_churn_rate": split.summary()["holdout_churn_rate"],
        "seed": seed,
        "folds": folds,
        "tuning_budget_seconds": budget,
        "results": [asdict(row) for row in results],
    }


def render(report: dict[str, object]) -> str:
    facts = (
        f"{report['rows']:,} synthetic Telco-schema rows (seed {report['seed']}): "
        f"{report['train_rows']:,} train / {report['holdout_rows']:,} holdout, holdout churn "
        f"rate {report['holdout_churn_rate']:.1%}; {report['folds']}-fold stratified CV on the "
        f"training split; tuning budget {report['tuning_budget_seconds']:g} s."
    )
    rows = [
        [
            r["model"],
            f"{r['cv_auc_mean']:.4f} ± {r['cv_auc_std']:.4f}",
            f"{r['holdout_auc']:.4f}",
            f"{r['holdout_brier']:.4f}",
            r["fit_seconds"],
            r["note"],
        ]
        for r in report["results"]  # type: ignore[union-attr]
    ]
    headers = ["model", "CV ROC AUC", "holdout ROC AUC", "holdout Brier", "fit s", "note"]
    timing = (
        "fit s: the final fit on the training split; for the candidate, selection, tuning, "
        "calibration and the final fit together."
    )
    return f"{facts}\n\n{markdown_table(headers, rows)}\n\n{timing}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=TELCO_ROWS)
    parser.add_argument(
        "--budget", type=float, default=0.0, help="tuning budget per recipe, seconds (0: none)"
    )
    parser.add_argument("--folds", type=int, default=FOLDS)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/model_quality.json"))
    args = parser.parse_args(argv)
    report = run(args.rows, args.budget, args.folds, args.seed)
    table = render(report)
    print(table)
    write_report(args.out, report, table)


if __name__ == "__main__":
    main()
