"""The model recipe: an sklearn Pipeline that carries its own preprocessing.

Serving feeds it raw contract fields, so there is no training/serving skew to keep in sync.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from churnops.contract import (
    CATEGORICAL_FEATURES,
    FEATURE_NAMES,
    FEATURES_BY_NAME,
    NUMERIC_FEATURES,
    TARGET_COLUMN,
    TARGET_POSITIVE,
)

Recipe = Literal["hist_gradient_boosting", "logistic_regression"]
RECIPES: tuple[str, ...] = ("hist_gradient_boosting", "logistic_regression")

# Types outside skops' default trust list that our recipes contain, each reviewed: a numpy dtype,
# the fitted tree predictor, and sklearn's own input validator bound with functools.partial.
# MLflow refuses to load a model holding any other untrusted type.
TRUSTED_TYPES: list[str] = [
    "functools.partial",
    "numpy.dtype",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.utils.validation.check_array",
]


def _categories() -> list[list[str]]:
    return [list(FEATURES_BY_NAME[name].categories) for name in CATEGORICAL_FEATURES]


def build_pipeline(
    recipe: Recipe = "hist_gradient_boosting",
    *,
    max_iter: int = 300,
    learning_rate: float = 0.08,
    max_leaf_nodes: int = 31,
    l2_regularization: float = 1.0,
    c: float = 1.0,
    seed: int = 42,
) -> Pipeline:
    """Preprocessing + estimator for one of the configurable recipes."""
    if recipe == "hist_gradient_boosting":
        encode = OrdinalEncoder(
            categories=_categories(),
            handle_unknown="use_encoded_value",
            unknown_value=np.nan,
            encoded_missing_value=np.nan,
        )
        preprocess = ColumnTransformer(
            [("categorical", encode, list(CATEGORICAL_FEATURES))],
            remainder="passthrough",
            verbose_feature_names_out=False,
        )
        estimator = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            max_leaf_nodes=max_leaf_nodes,
            l2_regularization=l2_regularization,
            categorical_features=list(range(len(CATEGORICAL_FEATURES))),
            early_stopping=True,
            validation_fraction=0.1,
            n_iter_no_change=20,
            random_state=seed,
        )
    elif recipe == "logistic_regression":
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        preprocess = ColumnTransformer(
            [
                (
                    "categorical",
                    OneHotEncoder(categories=_categories(), handle_unknown="ignore"),
                    list(CATEGORICAL_FEATURES),
                ),
                ("numeric", numeric, list(NUMERIC_FEATURES)),
            ],
            verbose_feature_names_out=False,
        )
        estimator = LogisticRegression(C=c, max_iter=1000)
    else:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {RECIPES}")
    return Pipeline([("preprocess", preprocess), ("model", estimator)])


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, list(FEATURE_NAMES)]


def labels(frame: pd.DataFrame) -> np.ndarray:
    return (frame[TARGET_COLUMN] == TARGET_POSITIVE).to_numpy(dtype=np.int8)


def train(frame: pd.DataFrame, recipe: Recipe = "hist_gradient_boosting", **params) -> Pipeline:
    """Fit the recipe on cleaned customers."""
    pipeline = build_pipeline(recipe, **params)
    pipeline.fit(features(frame), labels(frame))
    return pipeline


def churn_probability(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(features(frame))[:, 1]
