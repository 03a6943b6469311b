"""Scoring a fitted recipe: contract features and labels in, churn probabilities out.

Every recipe is an sklearn Pipeline that carries its own preprocessing, so serving feeds it raw
contract fields and there is no training/serving skew to keep in sync.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from churnops.contract import Contract, Feature
from churnops.model.tree_input import lean_estimator


def features(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    return frame.loc[:, list(contract.feature_names)]


def labels(frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    """The target as 0/1 (int8): cleaned data holds it so already; any other spelling the
    contract accepts is encoded (and one it does not is an error)."""
    target = frame[contract.target.name]
    if pd.api.types.is_numeric_dtype(target.dtype) and target.isin((0, 1)).all():
        return target.to_numpy(dtype=np.int8)
    codes = {value: contract.target.encode(value) for value in target.dropna().unique()}
    unknown = [value for value, code in codes.items() if code is None]
    if unknown or target.isna().any():
        shown = unknown[:3] if unknown else ["(blank)"]
        raise ValueError(f"column {contract.target.name!r}: not a churn label: {shown}")
    return target.map(codes).to_numpy(dtype=np.int8)


def churn_probability(model: Pipeline, frame: pd.DataFrame, contract: Contract) -> np.ndarray:
    return model.predict_proba(features(frame, contract))[:, 1]


CHECK_ROW_COUNT = 200
# A value no training set holds: the fast scorer must treat unseen levels as the pipeline does.
UNSEEN_CATEGORY = "__churnops-unseen__"


def _check_values(feature: Feature, rng: np.random.Generator, count: int) -> list[object]:
    if feature.kind == "categorical":
        levels = list(feature.categories or ())
        if feature.is_open:
            levels += [str(feature.example_value()), UNSEEN_CATEGORY]
        return [levels[i] for i in rng.integers(0, len(levels), count)]
    if feature.kind == "boolean":
        return [bool(value) for value in rng.integers(0, 2, count)]
    example = feature.example_value()
    centre = float(example) if isinstance(example, int | float) else 0.0
    low = feature.minimum if feature.minimum is not None else min(0.0, centre)
    high = feature.maximum if feature.maximum is not None else max(low, centre) + 1000.0
    if feature.kind == "integer":
        return [int(value) for value in rng.integers(int(low), int(high) + 1, count)]
    return [float(value) for value in rng.uniform(low, high, count)]


def check_rows(contract: Contract, count: int = CHECK_ROW_COUNT) -> list[list[object]]:
    """Varied rows of `contract` (every category, unseen levels of open ones, the whole range,
    blanks where allowed) that a fast scorer must score exactly as the pipeline does before it
    serves."""
    rng = np.random.default_rng(2024)
    columns = []
    for feature in contract.features:
        values = _check_values(feature, rng, count)
        if feature.nullable:
            values[::7] = [None] * len(values[::7])
        columns.append(values)
    return [list(row) for row in zip(*columns, strict=True)]


Rows = Sequence[Sequence[object]]
Scorer = Callable[[Rows], np.ndarray]


def rows_to_frame(rows: Rows, contract: Contract) -> pd.DataFrame:
    """Feature frame from rows of raw values in contract order: numbers (and booleans, as 1/0)
    as float64, categories as text; None is missing (NaN), as in cleaned data."""
    frame = pd.DataFrame(list(rows), columns=list(contract.feature_names), dtype=object)
    for feature in contract.features:
        column = frame[feature.name]
        if feature.is_numeric:
            frame[feature.name] = pd.to_numeric(column, errors="coerce").astype(np.float64)
        else:
            frame[feature.name] = column.where(column.notna(), np.nan)
    return frame


def frame_to_rows(frame: pd.DataFrame, contract: Contract) -> list[list[object]]:
    """Rows of raw values in contract order, missing as None: the inverse of `rows_to_frame`."""
    values = features(frame, contract).astype(object)
    return values.where(values.notna(), None).to_numpy().tolist()


def scorer(model: Pipeline, check_rows: Rows, contract: Contract) -> Scorer:
    """Churn probability for rows of raw values in contract order, as fast as the model allows.

    For the boosting recipe (calibrated or not) the rows are encoded with plain dict lookups and
    the fitted final estimator is called on the matrix directly: pandas and the column
    transformer's per-call validation are most of a small call's cost. The fast path must
    reproduce the pipeline on `check_rows`; any other pipeline, or any disagreement, gets the
    plain pipeline call."""

    def plain(rows: Rows) -> np.ndarray:
        return churn_probability(model, rows_to_frame(rows, contract), contract)

    expected = plain(check_rows)
    for lean in (True, False):
        fast = _direct_boosting_scorer(model, contract, lean)
        if fast is not None and np.allclose(fast(check_rows), expected, rtol=0, atol=1e-12):
            return fast
    return plain


def _final_steps(model: Pipeline, lean: bool) -> tuple[ColumnTransformer, Any] | None:
    """The pipeline's encoder and final estimator; with `lean`, the estimator's copy that skips
    re-encoding its input (see tree_input.py), or None when there is none."""
    if not isinstance(model, Pipeline):
        return None
    preprocess, estimator = model.named_steps.get("preprocess"), model.named_steps.get("model")
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(estimator, "predict_proba"):
        return None
    if lean:
        estimator = lean_estimator(estimator)
    return None if estimator is None else (preprocess, estimator)


def _direct_boosting_scorer(model: Pipeline, contract: Contract, lean: bool) -> Scorer | None:
    """Ordinal codes and passthrough numbers into whatever final estimator takes them (the
    boosted trees, or a `CalibratedClassifierCV` around them)."""
    steps = _final_steps(model, lean)
    if steps is None:
        return None
    preprocess, estimator = steps
    encoders: dict[str, dict[object, float]] = {}
    for _name, transformer, columns in preprocess.transformers_:
        if isinstance(transformer, OrdinalEncoder):
            encoders.update(_ordinal_codes(transformer, list(columns)))
        elif not (isinstance(transformer, FunctionTransformer) and transformer.func is None):
            return None  # a transformer this shortcut does not reproduce
    names = contract.feature_names
    position = {name: i for i, name in enumerate(names)}
    output = [str(name) for name in preprocess.get_feature_names_out()]
    if set(output) != set(names):
        return None
    plan = [
        (position[name], None if name not in encoders else _Codes(encoders[name]))
        for name in output
    ]

    def score(rows: Rows) -> np.ndarray:
        # A column at a time: numbers through numpy (None is NaN), categories through one
        # `map` of the code table, instead of a Python call per value.
        if not rows:
            return np.empty(0, dtype=np.float64)
        columns = list(zip(*rows, strict=True))
        matrix = np.empty((len(rows), len(plan)), dtype=np.float64)
        for j, (i, codes) in enumerate(plan):
            column = columns[i]
            matrix[:, j] = column if codes is None else list(map(codes.__getitem__, column))
        return estimator.predict_proba(matrix)[:, 1]

    return score


class _Codes(dict):
    """Category -> ordinal code; a category the encoder never saw is missing (NaN)."""

    def __missing__(self, key: object) -> float:
        return math.nan


FrameScorer = Callable[[pd.DataFrame], np.ndarray]


def frame_scorer(model: Pipeline, check_frame: pd.DataFrame, contract: Contract) -> FrameScorer:
    """Churn probability for a typed frame of contract features (batch scoring), as fast as the
    model allows: for the boosting recipe each ordinal column is coded with one vectorized
    categorical lookup instead of the encoder's per-value Python mapping, and the final
    estimator is called on the matrix. It must reproduce the pipeline on `check_frame`; any
    other pipeline, or any disagreement, gets the plain pipeline call."""

    def plain(frame: pd.DataFrame) -> np.ndarray:
        return churn_probability(model, frame, contract)

    expected = plain(check_frame)
    # Cleaned data holds categories as pandas categoricals, which the fast path codes apart.
    categorical = {name: "category" for name in contract.categorical if name in check_frame}
    checks = (check_frame, check_frame.astype(categorical))
    for lean in (True, False):
        fast = _vectorized_boosting_scorer(model, contract, lean)
        if fast is not None and all(
            np.allclose(fast(checked), expected, rtol=0, atol=1e-12) for checked in checks
        ):
            return fast
    return plain


def _vectorized_boosting_scorer(
    model: Pipeline, contract: Contract, lean: bool
) -> FrameScorer | None:
    steps = _final_steps(model, lean)
    if steps is None:
        return None
    preprocess, estimator = steps
    tables: dict[str, dict[object, float]] = {}
    for _name, transformer, columns in preprocess.transformers_:
        if isinstance(transformer, OrdinalEncoder):
            tables.update(_ordinal_codes(transformer, list(columns)))
        elif not (isinstance(transformer, FunctionTransformer) and transformer.func is None):
            return None
    output = [str(name) for name in preprocess.get_feature_names_out()]
    if set(output) != set(contract.feature_names):
        return None
    lookups = {
        column: (
            pd.Index(list(table)),
            np.append(np.array(list(table.values()), np.float64), np.nan),
        )
        for column, table in tables.items()
    }

    def encode(frame: pd.DataFrame) -> np.ndarray:
        matrix = np.empty((len(frame), len(output)), dtype=np.float64)
        for j, name in enumerate(output):
            column = frame[name]
            if name in lookups:
                categories, values = lookups[name]
                # Unknown and missing values get code -1: the last entry, NaN, as the encoder.
                if isinstance(column.dtype, pd.CategoricalDtype):
                    # Cleaned data: only the column's few categories are looked up.
                    own = categories.get_indexer(column.cat.categories)
                    matrix[:, j] = np.append(values[own], np.nan)[column.cat.codes.to_numpy()]
                else:
                    codes = pd.Categorical(column, categories=categories).codes
                    matrix[:, j] = values[codes]
            else:
                matrix[:, j] = pd.to_numeric(column, errors="coerce").to_numpy(np.float64)
        return matrix

    def score(frame: pd.DataFrame) -> np.ndarray:
        return estimator.predict_proba(encode(frame))[:, 1]

    return score


def _ordinal_codes(encoder: OrdinalEncoder, columns: list[str]) -> dict[str, dict[object, float]]:
    """Each known category's code, as the fitted encoder gives it (rare categories grouped as
    "infrequent" share one code), by encoding every category once."""
    categories = [list(values) for values in encoder.categories_]
    longest = max((len(values) for values in categories), default=0)
    if longest == 0:
        return {column: {} for column in columns}
    padded = {
        column: values + values[:1] * (longest - len(values))
        for column, values in zip(columns, categories, strict=True)
    }
    codes = encoder.transform(pd.DataFrame(padded, columns=columns, dtype=object))
    table: dict[str, dict[object, float]] = {}
    for j, (column, values) in enumerate(zip(columns, categories, strict=True)):
        table[column] = {
            value: float(codes[k, j])
            for k, value in enumerate(values)
            if not (isinstance(value, float) and np.isnan(value))
        }
    return table
