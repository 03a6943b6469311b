"""Model recipes by name: each is a typed hyperparameter model and a builder of an sklearn Pipeline.

Adding a recipe is one `Recipe(...)` entry in `RECIPES`: settings validate the name against it,
`auto` selection cross-validates it alongside the others, tuning searches its declared `space`,
training builds from it, a run logs only that recipe's hyperparameters, and the Dagster run
config (orchestration/config.py) offers its section in the launchpad.

Each pipeline carries its own preprocessing, built from the data contract: closed categories
are the contract's, open ones are learned at fit (unseen values score as unknown), booleans are
numbers 0/1. So serving feeds it raw contract fields (see `churnops.model.scoring`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Generic, Protocol, TypeVar

import numpy as np
import pandas as pd
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from churnops.contract import Contract
from churnops.model.scoring import features, labels

# Types outside skops' default trust list that our recipes contain, each reviewed: a numpy dtype,
# the fitted tree predictor, sklearn's own input validator bound with functools.partial, and the
# fitted classifier-calibrator pair of a calibrated model (`CalibratedClassifierCV` keeps one) and
# its Platt sigmoid (the isotonic regression is trusted by default).
# MLflow refuses to load a model holding any other untrusted type.
TRUSTED_TYPES: list[str] = [
    "functools.partial",
    "numpy.dtype",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]

# `CHURNOPS_RECIPE=auto`: every registered recipe is cross-validated and the best one trained.
AUTO = "auto"
# Most levels a categorical feature is encoded with; rarer ones share one "infrequent" level.
# The boosted trees' native categorical support takes fewer than 255 (its bins).
MAX_CATEGORY_LEVELS = 250


class RecipeParams(BaseModel):
    """One recipe's hyperparameters: immutable, and a misspelt name is an error, not ignored."""

    model_config = ConfigDict(frozen=True, extra="forbid")


P = TypeVar("P", bound=RecipeParams)


class SearchTrial(Protocol):
    """What a search space asks of a tuning trial: the subset of `optuna.Trial` it uses, so
    the registry (which serving loads) never imports optuna."""

    def suggest_float(self, name: str, low: float, high: float, *, log: bool = False) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, log: bool = False) -> int: ...


# A trial -> the hyperparameter values to try (a subset of the params model's fields).
SearchSpace = Callable[[SearchTrial], dict[str, object]]


@dataclass(frozen=True)
class Recipe(Generic[P]):
    """A registry entry: the name settings choose it by, its params model, its builder and the
    space tuning searches (None: the recipe is never tuned)."""

    name: str
    params: type[P]
    build: Callable[[P, int, Contract], Pipeline]  # (params, seed, contract) -> unfitted
    description: str
    space: SearchSpace | None = None

    def parse(self, values: Mapping[str, object] | None = None) -> P:
        """Typed params from plain values (e.g. run config); unset ones take their defaults."""
        return self.params.model_validate(dict(values or {}))

    def pipeline(self, params: P | None, seed: int, contract: Contract) -> Pipeline:
        chosen = self.params() if params is None else params
        if not isinstance(chosen, self.params):
            raise TypeError(
                f"recipe {self.name!r} takes {self.params.__name__}, not {type(chosen).__name__}"
            )
        return self.build(chosen, seed, contract)


def _category_groups(contract: Contract) -> list[tuple[str, list[str]]]:
    """(step name, columns): closed categorical columns, then open ones, leaving out an empty
    group. Closed columns encode the contract's categories; open ones learn theirs at fit."""
    closed = [name for name in contract.categorical if not contract.by_name[name].is_open]
    opened = [name for name in contract.categorical if contract.by_name[name].is_open]
    groups = [("categorical", closed), ("open_categorical", opened)]
    return [(step, names) for step, names in groups if names]


def _categories(contract: Contract, names: list[str]) -> list[list[str]] | str:
    if any(contract.by_name[name].is_open for name in names):
        return "auto"
    return [list(contract.by_name[name].categories or ()) for name in names]


def _ordinal(contract: Contract, names: list[str]) -> OrdinalEncoder:
    return OrdinalEncoder(
        categories=_categories(contract, names),
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
        encoded_missing_value=np.nan,
        max_categories=MAX_CATEGORY_LEVELS,
    )


def _one_hot(contract: Contract, names: list[str]) -> OneHotEncoder:
    return OneHotEncoder(
        categories=_categories(contract, names),
        handle_unknown="infrequent_if_exist",
        max_categories=MAX_CATEGORY_LEVELS,
    )


class HistGradientBoostingParams(RecipeParams):
    max_iter: int = Field(300, gt=0, description="Boosting iterations (upper bound).")
    learning_rate: float = Field(0.08, gt=0, description="Boosting learning rate.")
    max_leaf_nodes: int = Field(31, gt=1, description="Leaves per tree.")
    l2_regularization: float = Field(1.0, ge=0, description="Boosting L2 penalty.")


def _hist_gradient_boosting(
    params: HistGradientBoostingParams, seed: int, contract: Contract
) -> Pipeline:
    """Ordinal codes first (closed, then open columns), the numbers passed through after."""
    preprocess = ColumnTransformer(
        [(step, _ordinal(contract, names), names) for step, names in _category_groups(contract)],
        remainder="passthrough",
        verbose_feature_names_out=False,
    )
    categorical = len(contract.categorical)
    estimator = HistGradientBoostingClassifier(
        max_iter=params.max_iter,
        learning_rate=params.learning_rate,
        max_leaf_nodes=params.max_leaf_nodes,
        l2_regularization=params.l2_regularization,
        categorical_features=list(range(categorical)) if categorical else None,
        early_stopping=True,
        validation_fraction=0.1,
        n_iter_no_change=20,
        random_state=seed,
    )
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _hist_gradient_boosting_space(trial: SearchTrial) -> dict[str, object]:
    """Around the defaults: step size, tree size and penalty (early stopping sets the trees)."""
    return {
        "learning_rate": trial.suggest_float("learning_rate", 0.02, 0.3, log=True),
        "max_leaf_nodes": trial.suggest_int("max_leaf_nodes", 8, 64, log=True),
        "l2_regularization": trial.suggest_float("l2_regularization", 1e-3, 10.0, log=True),
    }


class LogisticRegressionParams(RecipeParams):
    c: float = Field(1.0, gt=0, description="Inverse regularization strength.")


def _logistic_regression(
    params: LogisticRegressionParams, seed: int, contract: Contract
) -> Pipeline:
    """The seed is unused: lbfgs on this convex loss is deterministic."""
    numeric = Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())])
    steps = [(step, _one_hot(contract, names), names) for step, names in _category_groups(contract)]
    if contract.numeric:
        steps.append(("numeric", numeric, list(contract.numeric)))
    preprocess = ColumnTransformer(steps, verbose_feature_names_out=False)
    estimator = LogisticRegression(C=params.c, max_iter=1000)
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def _logistic_regression_space(trial: SearchTrial) -> dict[str, object]:
    return {"c": trial.suggest_float("c", 1e-3, 100.0, log=True)}


def _by_name(*recipes: Recipe) -> dict[str, Recipe]:
    registry = {recipe.name: recipe for recipe in recipes}
    if len(registry) != len(recipes):
        raise ValueError("two recipes share a name")
    return registry


RECIPES: dict[str, Recipe] = _by_name(
    Recipe(
        "hist_gradient_boosting",
        HistGradientBoostingParams,
        _hist_gradient_boosting,
        "Gradient-boosted trees on ordinal-coded categories (native missing values).",
        _hist_gradient_boosting_space,
    ),
    Recipe(
        "logistic_regression",
        LogisticRegressionParams,
        _logistic_regression,
        "Logistic regression on one-hot categories and imputed, scaled numbers.",
        _logistic_regression_space,
    ),
)


def lookup(name: str) -> Recipe:
    """The registered recipe called `name`; an unknown name is an error listing the choices."""
    try:
        return RECIPES[name]
    except KeyError:
        raise ValueError(f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}") from None


def check_choice(name: str) -> str:
    """`auto` or a registered recipe name, else a message listing them."""
    if name != AUTO and name not in RECIPES:
        raise ValueError(
            f"unknown recipe {name!r}; choose one of {', '.join(RECIPES)}, "
            f"or {AUTO!r} to pick the best by cross-validation"
        )
    return name


# `auto` or a registered recipe name (CHURNOPS_RECIPE, the training policy).
RecipeChoice = Annotated[str, AfterValidator(check_choice)]


def candidates(choice: str) -> list[str]:
    """The recipes a choice cross-validates: all registered ones for `auto`, else the pinned one."""
    return list(RECIPES) if choice == AUTO else [lookup(choice).name]


def build_pipeline(
    name: str, params: RecipeParams | None = None, *, seed: int, contract: Contract
) -> Pipeline:
    """The unfitted pipeline of recipe `name` for `contract`'s features (its default params
    unless given)."""
    return lookup(name).pipeline(params, seed, contract)


def train(
    frame: pd.DataFrame,
    name: str,
    params: RecipeParams | None = None,
    *,
    seed: int,
    contract: Contract,
) -> Pipeline:
    """Fit recipe `name` on cleaned customers."""
    pipeline = build_pipeline(name, params, seed=seed, contract=contract)
    pipeline.fit(features(frame, contract), labels(frame, contract))
    return pipeline


def run_params(params: RecipeParams, seed: int) -> dict[str, object]:
    """What a training run logs: its own recipe's hyperparameters and the seed, nothing else."""
    return {**params.model_dump(), "seed": seed}
