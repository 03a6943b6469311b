"""How a candidate is chosen on the training split: recipe selection by CV, tuning under a
budget, calibration only when CV says it helps, and the calibrated model still served fast."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio
from pydantic import ValidationError
from sklearn.calibration import CalibratedClassifierCV
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churnops.contract import Contract, telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, scoring
from churnops.model.calibration import RAW, assess, with_calibration
from churnops.model.recipes import (
    AUTO,
    HistGradientBoostingParams,
    LogisticRegressionParams,
    Recipe,
    RecipeParams,
)
from churnops.model.selection import cross_validate, select_recipe, stratified_folds
from churnops.model.training import CandidatePolicy, fit_candidate
from churnops.model.tuning import load_study, tune
from churnops.settings import Settings

pytestmark = pytest.mark.unit
TELCO = telco_contract()


class NoParams(RecipeParams):
    pass


def _constant(params: NoParams, seed: int, contract: Contract) -> Pipeline:
    return Pipeline([("model", DummyClassifier(strategy="prior"))])


CONSTANT = Recipe("constant", NoParams, _constant, "Predicts the training churn rate for all.")


@pytest.fixture
def with_constant(monkeypatch: pytest.MonkeyPatch) -> Recipe:
    monkeypatch.setitem(recipes.RECIPES, CONSTANT.name, CONSTANT)
    return CONSTANT


@pytest.fixture(autouse=True, scope="module")
def _one_openmp_thread():
    """The boosting fits here are tiny: OpenMP threads only contend with the other test
    workers (xdist) and cost far more than they give."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def split():
    frame = clean_customers(generate_customers(2000, seed=11), "s", TELCO).frame
    return stratified_split(frame, TELCO)


def test_selection_picks_the_recipe_that_ranks_churners_better(split, with_constant) -> None:
    selection = select_recipe(
        split.train,
        ["constant", "logistic_regression"],
        folds=3,
        seed=1,
        contract=TELCO,
        params_for=None,
    )
    assert selection.best.recipe == "logistic_regression"
    table = selection.table()
    assert list(table.columns) == [
        "recipe",
        "roc_auc_mean",
        "roc_auc_std",
        "brier_mean",
        "fit_seconds",
        "chosen",
    ]
    assert list(table["recipe"]) == ["logistic_regression", "constant"]  # best first
    assert list(table["chosen"]) == [True, False]
    assert table.loc[1, "roc_auc_mean"] == 0.5  # a constant score cannot rank
    assert table.loc[0, "roc_auc_mean"] > 0.75
    assert all(len(result.roc_auc) == 3 for result in selection.results)


def test_cv_is_reproducible_with_the_seed_and_uses_training_rows_only(split) -> None:
    def run(seed: int):
        return cross_validate(
            split.train, "logistic_regression", None, folds=3, seed=seed, contract=TELCO
        )

    first, again, other = run(4), run(4), run(5)
    assert first.roc_auc == again.roc_auc
    np.testing.assert_array_equal(first.out_of_fold, again.out_of_fold)
    assert first.roc_auc != other.roc_auc
    assert len(first.out_of_fold) == len(split.train)


def test_folds_are_stratified_and_need_two(split) -> None:
    y = scoring.labels(split.train, TELCO)
    fold_of_row = stratified_folds(y, 4, seed=0)
    rates = [y[fold_of_row == fold].mean() for fold in range(4)]
    assert max(rates) - min(rates) < 0.01
    with pytest.raises(ValueError, match="at least 2 folds"):
        stratified_folds(y, 1, seed=0)


def test_recipe_setting_is_auto_by_default_or_a_pinned_registered_name(monkeypatch) -> None:
    monkeypatch.delenv("CHURNOPS_RECIPE", raising=False)
    assert Settings().recipe == AUTO
    assert recipes.candidates(AUTO) == list(recipes.RECIPES)
    assert recipes.candidates("logistic_regression") == ["logistic_regression"]
    with pytest.raises(ValidationError, match="or 'auto' to pick the best"):
        Settings(recipe="random_forest")
    with pytest.raises(ValidationError, match="greater than or equal to 2"):
        Settings(cv_folds=1)


def test_tuning_with_a_fixed_trial_count_is_reproducible_and_persisted(split, tmp_path) -> None:
    def run():
        return tune(
            split.train,
            "logistic_regression",
            LogisticRegressionParams(c=0.5),
            folds=2,
            seed=3,
            budget_seconds=600,
            contract=TELCO,
            max_trials=4,
        )

    first, again = run(), run()
    assert len(first.trials) == 4
    assert first.trials[["number", "state", "cv_roc_auc", "c"]].equals(
        again.trials[["number", "state", "cv_roc_auc", "c"]]
    )
    assert first.trials.loc[0, "c"] == 0.5  # the first trial is the starting params
    assert first.best.roc_auc_mean == pytest.approx(first.trials["cv_roc_auc"].max(), abs=1e-4)
    journal = tmp_path / "study.journal"
    journal.write_text(first.journal)
    study = load_study(Path(journal), first.study_name)
    assert [trial.params["c"] for trial in study.trials] == list(first.trials["c"])


def test_tuning_stops_starting_trials_when_the_budget_is_spent(split) -> None:
    started = time.perf_counter()
    result = tune(
        split.train, "logistic_regression", folds=2, seed=3, budget_seconds=1.0, contract=TELCO
    )
    elapsed = time.perf_counter() - started
    assert len(result.trials) >= 2
    assert elapsed < 1.0 + 4.0  # the budget plus the trial running when it ran out


def test_a_recipe_without_a_search_space_is_not_tuned(split, with_constant) -> None:
    with pytest.raises(ValueError, match="declares no search space"):
        tune(split.train, "constant", folds=2, seed=0, budget_seconds=1, contract=TELCO)


def _bernoulli(rows: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.beta(1.2, 3.0, rows)
    y = (rng.uniform(size=rows) < truth).astype(np.int8)
    return truth, y, rng.integers(0, 3, rows)


def test_calibration_is_chosen_when_it_lowers_the_cv_brier() -> None:
    truth, y, folds = _bernoulli(4000, seed=0)
    squashed = 0.5 + 0.25 * (truth - 0.5)  # right ranking, probabilities pulled to 0.5
    report = assess(y, squashed, folds)
    assert report.calibrated
    assert report.brier[report.method] < report.brier[RAW]
    assert set(report.brier) == set(report.curves) == {"none", "sigmoid", "isotonic"}
    raw = report.curves[RAW]  # squashed: observed rates spread far wider than the predictions
    assert np.ptp(raw.observed) > 2 * np.ptp(raw.predicted)


def test_well_calibrated_scores_are_served_as_they_are() -> None:
    truth, y, folds = _bernoulli(4000, seed=0)
    report = assess(y, truth, folds)
    assert report.method == RAW
    assert min(report.brier["sigmoid"], report.brier["isotonic"]) >= report.brier[RAW]


def model_params() -> HistGradientBoostingParams:
    return HistGradientBoostingParams(max_iter=30)


def _calibrated_boosting(split, method: str) -> Pipeline:
    unfitted = recipes.build_pipeline(
        "hist_gradient_boosting", model_params(), seed=0, contract=TELCO
    )
    model = with_calibration(unfitted, method, folds=3)
    return model.fit(scoring.features(split.train, TELCO), scoring.labels(split.train, TELCO))


@pytest.mark.parametrize("method", ["sigmoid", "isotonic"])
def test_a_calibrated_model_is_a_pipeline_with_reviewed_types(split, method: str) -> None:
    model = _calibrated_boosting(split, method)
    assert isinstance(model, Pipeline)
    final = model.named_steps["model"]
    assert isinstance(final, CalibratedClassifierCV) and final.method == method
    assert len(final.calibrated_classifiers_) == 1  # one model to serve, not one per fold
    assert set(sio.get_untrusted_types(data=sio.dumps(model))) <= set(recipes.TRUSTED_TYPES)


def test_the_fast_scorer_serves_a_calibrated_boosting_pipeline(split, monkeypatch) -> None:
    model = _calibrated_boosting(split, "isotonic")
    holdout = scoring.features(split.holdout, TELCO).copy()
    holdout.loc[holdout.index[::7], "TotalCharges"] = np.nan
    rows = scoring.frame_to_rows(holdout, TELCO)
    score = scoring.scorer(model, rows[:50], TELCO)
    expected = scoring.churn_probability(model, holdout, TELCO)
    calls: list[int] = []
    original = model.predict_proba
    monkeypatch.setattr(model, "predict_proba", lambda frame: calls.append(1) or original(frame))
    np.testing.assert_allclose(score(rows), expected, rtol=0, atol=1e-12)
    assert calls == []  # the direct path, not the pipeline
    plain = recipes.train(
        split.train, "hist_gradient_boosting", model_params(), seed=0, contract=TELCO
    )
    assert not np.allclose(expected, scoring.churn_probability(plain, holdout, TELCO))


def test_fit_candidate_selects_tunes_calibrates_and_fits(split, monkeypatch) -> None:
    registry = {"logistic_regression": recipes.RECIPES["logistic_regression"], "constant": CONSTANT}
    monkeypatch.setattr(recipes, "RECIPES", registry)
    lines: list[str] = []
    policy = CandidatePolicy(
        recipe=AUTO, folds=2, seed=0, tuning_budget_seconds=600, tuning_max_trials=2
    )
    report = fit_candidate(split.train, policy, log=lines.append, contract=TELCO)
    assert report.recipe == "logistic_regression"
    assert [row["recipe"] for row in report.selection.rows()] == ["logistic_regression", "constant"]
    assert report.tuning is not None and len(report.tuning.trials) == 2
    assert report.cv.roc_auc_mean >= report.selection.best.roc_auc_mean - 1e-12
    holdout = scoring.features(split.holdout, TELCO)
    assert report.pipeline.predict_proba(holdout).shape[1] == 2
    assert {"cv_roc_auc", "cv_brier_none", "cv_brier_sigmoid", "tuning_trials"} <= set(
        report.metrics()
    )
    assert sum(line.startswith("CV ") for line in lines) == 2  # one line per recipe
    assert any(line.startswith("calibration: ") for line in lines)


def test_a_pinned_recipe_cross_validates_only_itself(split) -> None:
    policy = CandidatePolicy(recipe="logistic_regression", folds=2, seed=0)
    report = fit_candidate(split.train, policy, contract=TELCO)
    assert [row["recipe"] for row in report.selection.rows()] == ["logistic_regression"]
    assert report.tuning is None
    assert "tuning_trials" not in report.metrics()
