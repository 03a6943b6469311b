"""The recipe registry: one entry makes a recipe choosable, trainable and logged on its own."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, scoring
from churnops.model.recipes import (
    HistGradientBoostingParams,
    LogisticRegressionParams,
)
from churnops.settings import Settings

pytestmark = pytest.mark.unit
TELCO = telco_contract()


@pytest.fixture(scope="module")
def customers():
    return clean_customers(generate_customers(1500, seed=3), "synthetic", TELCO).frame


def test_a_registered_recipe_is_accepted_by_settings(with_prior, monkeypatch) -> None:
    monkeypatch.setenv("CHURNOPS_RECIPE", "always_prior")
    assert Settings().recipe == "always_prior"


def test_a_registered_recipe_trains_with_its_own_params(with_prior, customers) -> None:
    model = recipes.train(customers, "always_prior", seed=0, contract=TELCO)
    scores = scoring.churn_probability(model, customers, TELCO)
    np.testing.assert_allclose(scores, scoring.labels(customers, TELCO).mean())
    chosen = with_prior.parse({"strategy": "stratified"})
    stratified = recipes.train(customers, "always_prior", chosen, seed=0, contract=TELCO)
    scores = scoring.churn_probability(stratified, customers, TELCO)
    assert set(np.unique(scores)) <= {0.0, 1.0}


@pytest.mark.parametrize(
    ("name", "own"),
    [
        ("always_prior", {"strategy"}),
        ("hist_gradient_boosting", set(HistGradientBoostingParams.model_fields)),
        ("logistic_regression", {"c"}),
    ],
)
def test_a_run_logs_only_its_recipes_params_and_the_seed(with_prior, name, own) -> None:
    params = recipes.lookup(name).parse()
    assert set(recipes.run_params(params, seed=7)) == own | {"seed"}
    assert recipes.run_params(params, seed=7)["seed"] == 7


def test_params_reach_the_estimator() -> None:
    boosting = recipes.build_pipeline(
        "hist_gradient_boosting",
        HistGradientBoostingParams(max_iter=7, learning_rate=0.3),
        seed=5,
        contract=TELCO,
    )
    estimator = boosting.named_steps["model"]
    assert (estimator.max_iter, estimator.learning_rate, estimator.random_state) == (7, 0.3, 5)
    logistic = recipes.build_pipeline(
        "logistic_regression", LogisticRegressionParams(c=0.25), seed=0, contract=TELCO
    )
    assert logistic.named_steps["model"].C == 0.25


def test_unknown_recipe_names_are_refused_listing_the_choices(monkeypatch) -> None:
    choices = "choose one of hist_gradient_boosting, logistic_regression"
    with pytest.raises(ValueError, match=f"unknown recipe 'random_forest'; {choices}"):
        recipes.build_pipeline("random_forest", seed=0, contract=TELCO)
    monkeypatch.setenv("CHURNOPS_RECIPE", "random_forest")
    with pytest.raises(ValidationError, match=choices):
        Settings()


def test_params_are_typed_bounded_and_belong_to_one_recipe() -> None:
    boosting = recipes.lookup("hist_gradient_boosting")
    with pytest.raises(ValidationError, match="max_iters"):
        boosting.parse({"max_iters": 10})
    with pytest.raises(ValidationError, match="greater than 0"):
        boosting.parse({"learning_rate": 0})
    with pytest.raises(TypeError, match="takes HistGradientBoostingParams"):
        recipes.build_pipeline(
            "hist_gradient_boosting", LogisticRegressionParams(), seed=0, contract=TELCO
        )
