"""A recipe registered for one test at a time: what adding a recipe takes is one entry."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from sklearn.dummy import DummyClassifier
from sklearn.pipeline import Pipeline

from churnops.contract import Contract
from churnops.model.recipes import Recipe, RecipeParams


class PriorParams(RecipeParams):
    strategy: Literal["prior", "stratified"] = Field("prior", description="What to predict.")


def _prior(params: PriorParams, seed: int, contract: Contract) -> Pipeline:
    return Pipeline([("model", DummyClassifier(strategy=params.strategy, random_state=seed))])


PRIOR = Recipe("always_prior", PriorParams, _prior, "Predicts the training churn rate.")
