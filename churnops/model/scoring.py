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

from churnops.contract import FEATURE_NAMES, FEATURES, TARGET_COLUMN, TARGET_POSITIVE


def features(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[:, list(FEATURE_NAMES)]


def labels(frame: pd.DataFrame) -> np.ndarray:
    return (frame[TARGET_COLUMN] == TARGET_POSITIVE).to_numpy(dtype=np.int8)


def churn_probability(model: Pipeline, frame: pd.DataFrame) -> np.ndarray:
    return model.predict_proba(features(frame))[:, 1]


Rows = Sequence[Sequence[object]]
Scorer = Callable[[Rows], np.ndarray]


def rows_to_frame(rows: Rows) -> pd.DataFrame:
    """Feature frame from rows of raw values in contract order (None is missing)."""
    frame = pd.DataFrame(list(rows), columns=list(FEATURE_NAMES))
    for spec in FEATURES:
        if spec.kind == "float":
            frame[spec.name] = frame[spec.name].astype(np.float64)
    return frame


def frame_to_rows(frame: pd.DataFrame) -> list[list[object]]:
    """Rows of raw values in contract order, missing as None: the inverse of `rows_to_frame`."""
    values = features(frame).astype(object)
    return values.where(values.notna(), None).to_numpy().tolist()


def scorer(model: Pipeline, check_rows: Rows) -> Scorer:
    """Churn probability for rows of raw values in contract order, as fast as the model allows.

    For the boosting recipe (calibrated or not) the rows are encoded with plain dict lookups and
    the fitted final estimator is called on the matrix directly: pandas and the column
    transformer's per-call validation are most of a small call's cost. The fast path must
    reproduce the pipeline on `check_rows`; any other pipeline, or any disagreement, gets the
    plain pipeline call."""

    def plain(rows: Rows) -> np.ndarray:
        return churn_probability(model, rows_to_frame(rows))

    fast = _direct_boosting_scorer(model)
    if fast is None or not np.allclose(fast(check_rows), plain(check_rows), rtol=0, atol=1e-12):
        return plain
    return fast


def _direct_boosting_scorer(model: Pipeline) -> Scorer | None:
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
            for column, categories in zip(columns, transformer.categories_, strict=True):
                encoders[column] = {value: float(code) for code, value in enumerate(categories)}
        elif not (isinstance(transformer, FunctionTransformer) and transformer.func is None):
            return None  # a transformer this shortcut does not reproduce
    position = {name: i for i, name in enumerate(FEATURE_NAMES)}
    output = [str(name) for name in preprocess.get_feature_names_out()]
    if set(output) != set(FEATURE_NAMES):
        return None
    plan = [(position[name], encoders.get(name)) for name in output]
    missing = float("nan")

    def encode(row: Sequence[object]) -> list[float]:
        return [
            (missing if row[i] is None else float(row[i]))  # type: ignore[arg-type]
            if codes is None
            else codes.get(row[i], missing)
            for i, codes in plan
        ]

    def score(rows: Rows) -> np.ndarray:
        matrix = np.array([encode(row) for row in rows], dtype=np.float64)
        return estimator.predict_proba(matrix)[:, 1]

    return score
