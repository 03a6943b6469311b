"""Scoring a fitted recipe: contract features and labels in, churn probabilities out.

Every recipe is an sklearn Pipeline that carries its own preprocessing, so serving feeds it raw
contract fields and there is no training/serving skew to keep in sync.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

from churnops.contract import Contract


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

    fast = _direct_boosting_scorer(model, contract)
    if fast is None or not np.allclose(fast(check_rows), plain(check_rows), rtol=0, atol=1e-12):
        return plain
    return fast


def _direct_boosting_scorer(model: Pipeline, contract: Contract) -> Scorer | None:
    """Ordinal codes and passthrough numbers into whatever final estimator takes them (the
    boosted trees, or a `CalibratedClassifierCV` around them)."""
    if not isinstance(model, Pipeline):
        return None
    preprocess, estimator = model.named_steps.get("preprocess"), model.named_steps.get("model")
    if not isinstance(preprocess, ColumnTransformer) or not hasattr(estimator, "predict_proba"):
        return None
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
    plan = [(position[name], encoders.get(name)) for name in output]
    missing = float("nan")

    def number(value: object) -> float:
        return missing if value is None else float(value)  # type: ignore[arg-type]

    def encode(row: Sequence[object]) -> list[float]:
        return [
            number(row[i]) if codes is None else codes.get(row[i], missing) for i, codes in plan
        ]

    def score(rows: Rows) -> np.ndarray:
        matrix = np.array([encode(row) for row in rows], dtype=np.float64)
        return estimator.predict_proba(matrix)[:, 1]

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
