"""Per-customer reason codes: how much each contract feature moves a customer's churn log-odds.

A retention agent acts on why a customer is at risk, not only on the score. Attributions are
exact for the model being served: `base + contributions.sum(axis=1)` reproduces the margin (the
decision function of the uncalibrated final estimator; a calibrated probability is a monotone
function of it) to floating-point precision, so the reasons never disagree with the score.

- `linear` (logistic regression): coef * (x - background mean) per encoded column, one-hot
  columns summed into their contract feature; what SHAP's linear explainer computes under
  feature independence.
- `tree_path` (histogram gradient boosting): Saabas path attributions; every split a customer
  passes adds the change in the expected tree output to the split feature. SHAP's tree
  explainer is not used: it is wrong on scikit-learn's native categorical splits.

The domain core: numpy, pandas and scikit-learn only, as serving imports this module.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.utils.validation import check_is_fitted

from churnops.contract import Contract
from churnops.model.scoring import features

# The explainable final estimators, said in UnsupportedModel's message.
SUPPORTED = (
    "LogisticRegression or HistGradientBoostingClassifier (binary), "
    "optionally inside CalibratedClassifierCV(ensemble=False)"
)
# Raw category codes a native categorical split can hold (sklearn's bitsets are 8 x 32 bits).
_CODES = 256


class UnsupportedModel(ValueError):
    """A pipeline whose margin this module cannot attribute exactly."""


@dataclass(frozen=True)
class Explanation:
    """Log-odds attributions per contract feature (contract order) for each row.

    `kinds` holds each feature's contract kind, so reason texts can say "true" for a boolean
    rather than "1"."""

    base: np.ndarray  # (n,) the margin before any feature is considered
    contributions: np.ndarray  # (n, len(feature_names)) log-odds each feature adds
    feature_names: tuple[str, ...]
    kinds: tuple[str, ...] = ()

    @property
    def margin(self) -> np.ndarray:
        return self.base + self.contributions.sum(axis=1)


@dataclass(frozen=True)
class Reason:
    """One feature raising a customer's churn risk, with its value said in words."""

    feature: str
    value: object  # the customer's raw value, None when missing
    contribution: float  # log-odds it adds to churn risk
    text: str  # e.g. "Contract is Month-to-month", "TotalCharges is missing"


class Explainer(ABC):
    """Attributes a fitted pipeline's margin to the contract features of each row."""

    method: ClassVar[str]  # "linear" or "tree_path"

    def __init__(
        self, preprocess: ColumnTransformer, estimator: BaseEstimator, contract: Contract
    ) -> None:
        self.preprocess = preprocess
        self.estimator = estimator
        self.contract = contract
        self.kinds = tuple(feature.kind for feature in contract.features)

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        """The matrix the final estimator sees, dense (a sparse one-hot output included)."""
        encoded = self.preprocess.transform(features(frame, self.contract))
        if hasattr(encoded, "toarray"):
            encoded = encoded.toarray()
        return np.ascontiguousarray(encoded, dtype=np.float64)

    def margin(self, frame: pd.DataFrame) -> np.ndarray:
        """The model's own margin, which `explain` reproduces."""
        return np.asarray(self.estimator.decision_function(self.encode(frame)), dtype=np.float64)

    @abstractmethod
    def explain(self, frame: pd.DataFrame) -> Explanation: ...

    def _explanation(self, base: float, contributions: np.ndarray) -> Explanation:
        return Explanation(
            base=np.full(len(contributions), base, dtype=np.float64),
            contributions=contributions,
            feature_names=self.contract.feature_names,
            kinds=self.kinds,
        )


class LinearExplainer(Explainer):
    """coef_j * (x_j - mean_j) per encoded column, summed into its contract feature; the base
    is the margin of the background's mean encoded row."""

    method = "linear"

    def __init__(
        self,
        preprocess: ColumnTransformer,
        estimator: LogisticRegression,
        contract: Contract,
        owners: np.ndarray,
        background: pd.DataFrame,
    ) -> None:
        super().__init__(preprocess, estimator, contract)
        if len(background) == 0:
            raise ValueError("the background sample is empty: the linear base needs its mean")
        self._coef = np.asarray(estimator.coef_, dtype=np.float64).ravel()
        self._mean = self.encode(background).mean(axis=0)
        self._base = float(estimator.intercept_[0]) + float(self._coef @ self._mean)
        # (encoded columns, contract features): a column's coefficient under its feature, so
        # one matrix product sums the one-hot columns of a feature.
        self._weights = np.zeros((len(owners), len(contract.feature_names)), dtype=np.float64)
        self._weights[np.arange(len(owners)), owners] = self._coef
        self._shift = self._mean @ self._weights

    def explain(self, frame: pd.DataFrame) -> Explanation:
        contributions = self.encode(frame) @ self._weights - self._shift
        return self._explanation(self._base, contributions)


@dataclass(frozen=True)
class _Tree:
    """One fitted tree as flat arrays for vectorized routing, and each node's accumulated path
    attribution (used at the leaves) per contract feature."""

    feature: np.ndarray  # column of the estimator's internal matrix
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    is_leaf: np.ndarray
    is_categorical: np.ndarray
    decision_row: np.ndarray  # categorical node -> its row of `decisions`
    decisions: np.ndarray  # (categorical nodes, 2 + _CODES) go-left per code bucket
    paths: np.ndarray  # (nodes, contract features)
    root_mean: float


class TreePathExplainer(Explainer):
    """Saabas attributions for `HistGradientBoostingClassifier`: the base is the baseline
    prediction plus each tree's expected output; each split passed adds the change in expected
    output (a count-weighted mean of the leaves beneath) to the split feature.

    sklearn stores an internal node's unshrunk Newton step as its value (the root's is 0), not
    the expectation of the leaves beneath, so node expectations are recomputed from the leaves
    and their training counts. Rows are routed as sklearn's predictor does: NaN, a negative
    or unknown category follows the node's missing-value direction. The background is not used:
    the expectations are over the training rows each node saw."""

    method = "tree_path"

    def __init__(
        self,
        preprocess: ColumnTransformer,
        estimator: HistGradientBoostingClassifier,
        contract: Contract,
        owners: np.ndarray,
    ) -> None:
        super().__init__(preprocess, estimator, contract)
        owner_of_internal = owners[_internal_columns(estimator, len(owners))]
        known, known_row = _known_categories(estimator)
        self._trees = [
            _tree(predictor, owner_of_internal, known, known_row, len(contract.feature_names))
            for (predictor,) in estimator._predictors
        ]
        baseline = float(np.asarray(estimator._baseline_prediction).ravel()[0])
        self._base = baseline + sum(tree.root_mean for tree in self._trees)

    def _internal(self, encoded: np.ndarray) -> np.ndarray:
        """The matrix the trees split on: sklearn re-encodes native categorical columns (and
        puts them first) before predicting."""
        inner = getattr(self.estimator, "_preprocessor", None)
        matrix = encoded if inner is None else inner.transform(encoded)
        return np.ascontiguousarray(matrix, dtype=np.float64)

    def explain(self, frame: pd.DataFrame) -> Explanation:
        matrix = self._internal(self.encode(frame))
        contributions = np.zeros((len(matrix), len(self.contract.feature_names)))
        for tree in self._trees:
            contributions += tree.paths[_leaves(tree, matrix)]
        return self._explanation(self._base, contributions)


def _leaves(tree: _Tree, matrix: np.ndarray) -> np.ndarray:
    """The leaf each row reaches: all rows step down one level at a time, leaving as they land."""
    n, width = matrix.shape
    flat = matrix.ravel()
    leaves = np.zeros(n, dtype=np.intp)
    if tree.is_leaf[0]:
        return leaves
    rows = np.arange(n, dtype=np.intp)
    node = np.zeros(n, dtype=np.intp)
    categorical = bool(tree.is_categorical.any())
    while rows.size:
        x = flat[rows * width + tree.feature[node]]
        go_left = x <= tree.threshold[node]
        missing = np.isnan(x)
        go_left[missing] = tree.missing_left[node[missing]]
        if categorical:
            split = tree.is_categorical[node]
            if split.any():
                codes = np.nan_to_num(x[split], nan=-1.0, posinf=_CODES, neginf=-1.0)
                bucket = (np.clip(codes, -1.0, float(_CODES)) + 1.0).astype(np.intp)
                go_left[split] = tree.decisions[tree.decision_row[node[split]], bucket]
        child = np.where(go_left, tree.left[node], tree.right[node])
        landed = tree.is_leaf[child]
        leaves[rows[landed]] = child[landed]
        rows, node = rows[~landed], child[~landed]
    return leaves


def _tree(
    predictor: object,
    owner_of_internal: np.ndarray,
    known: np.ndarray,
    known_row: np.ndarray,
    n_features: int,
) -> _Tree:
    nodes = predictor.nodes  # type: ignore[attr-defined]
    count = len(nodes)
    is_leaf = nodes["is_leaf"].astype(bool)
    left = nodes["left"].astype(np.intp)
    right = nodes["right"].astype(np.intp)
    feature = nodes["feature_idx"].astype(np.intp)
    order = _preorder(left, right, is_leaf)
    weight = np.where(is_leaf, nodes["count"].astype(np.float64), 0.0)
    total = np.where(is_leaf, nodes["value"] * weight, 0.0)
    for i in reversed(order):
        if not is_leaf[i]:
            weight[i] = weight[left[i]] + weight[right[i]]
            total[i] = total[left[i]] + total[right[i]]
    # A leaf's own value is exact; an internal node's is the mean of the leaves beneath (a
    # plain mean if, unexpectedly, they hold no training count).
    mean = np.where(is_leaf, nodes["value"], total / np.where(weight > 0, weight, 1.0))
    for i in reversed(order):
        if not is_leaf[i] and weight[i] == 0:
            mean[i] = (mean[left[i]] + mean[right[i]]) / 2
    paths = np.zeros((count, n_features), dtype=np.float64)
    for i in order:
        if not is_leaf[i]:
            owner = owner_of_internal[feature[i]]
            for child in (left[i], right[i]):
                paths[child] = paths[i]
                paths[child, owner] += mean[child] - mean[i]
    is_categorical = nodes["is_categorical"].astype(bool) & ~is_leaf
    missing_left = nodes["missing_go_to_left"].astype(bool)
    decision_row, decisions = _categorical_decisions(
        predictor, is_categorical, missing_left, feature, known, known_row
    )
    return _Tree(
        feature=np.where(is_leaf, 0, feature),
        threshold=nodes["num_threshold"].astype(np.float64),
        missing_left=missing_left,
        left=left,
        right=right,
        is_leaf=is_leaf,
        is_categorical=is_categorical,
        decision_row=decision_row,
        decisions=decisions,
        paths=paths,
        root_mean=float(mean[0]),
    )


def _preorder(left: np.ndarray, right: np.ndarray, is_leaf: np.ndarray) -> list[int]:
    """Nodes reachable from the root, each parent before its children."""
    order: list[int] = []
    stack = [0]
    while stack:
        i = stack.pop()
        order.append(i)
        if not is_leaf[i]:
            stack.extend((int(right[i]), int(left[i])))
    return order


def _categorical_decisions(
    predictor: object,
    is_categorical: np.ndarray,
    missing_left: np.ndarray,
    feature: np.ndarray,
    known: np.ndarray,
    known_row: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Per categorical node, go-left for every code bucket: 0 is NaN or negative, 1 + c the code
    c, the last one a code past the bitsets. As sklearn: a code in the left set goes left, a
    known one right, anything else the missing-value way."""
    decision_row = np.zeros(len(is_categorical), dtype=np.intp)
    split_nodes = np.flatnonzero(is_categorical)
    decisions = np.zeros((max(len(split_nodes), 1), _CODES + 2), dtype=bool)
    if len(split_nodes) == 0:
        return decision_row, decisions
    left_sets = _bits(predictor.raw_left_cat_bitsets)  # type: ignore[attr-defined]
    bitset_idx = predictor.nodes["bitset_idx"].astype(np.intp)  # type: ignore[attr-defined]
    for row, i in enumerate(split_nodes):
        decision_row[i] = row
        in_left = left_sets[bitset_idx[i]]
        seen = known[known_row[feature[i]]]
        decisions[row, :] = missing_left[i]
        decisions[row, 1 : _CODES + 1] = in_left | (~seen & missing_left[i])
    return decision_row, decisions


def _bits(bitsets: np.ndarray) -> np.ndarray:
    """(k, 8) uint32 bitsets -> (k, 256) booleans: bit c of a set is word c // 32, bit c % 32."""
    words = np.ascontiguousarray(bitsets, dtype="<u4").reshape(-1, 8)
    return np.unpackbits(words.view(np.uint8), axis=1, bitorder="little").astype(bool)


def _known_categories(estimator: HistGradientBoostingClassifier) -> tuple[np.ndarray, np.ndarray]:
    """The categories each native categorical column saw at fit (others score as unknown), and
    each internal column's row of that table."""
    none = np.zeros((1, _CODES), dtype=bool), np.zeros(estimator.n_features_in_, np.intp)
    categorical = getattr(estimator, "is_categorical_", None)
    if categorical is None or not np.any(categorical):
        return none
    bitsets, row_of_feature = estimator._bin_mapper.make_known_categories_bitsets()
    return _bits(bitsets), row_of_feature.astype(np.intp)


def _internal_columns(estimator: HistGradientBoostingClassifier, width: int) -> np.ndarray:
    """For each column of the matrix the trees split on, the encoded column it came from."""
    inner = getattr(estimator, "_preprocessor", None)
    if inner is None:
        return np.arange(width)
    source = np.full(width, -1, dtype=np.intp)
    for name, transformer, columns in inner.transformers_:
        if isinstance(transformer, str) and transformer == "drop":
            continue
        chosen = np.arange(width)[columns]
        place = inner.output_indices_[name]
        if place.stop - place.start != len(chosen):
            raise UnsupportedModel(f"the boosting model's own {name!r} step is not one-to-one")
        source[place] = chosen
    if (source < 0).any():
        raise UnsupportedModel("the boosting model's own preprocessing drops columns")
    return source


def _owners(preprocess: ColumnTransformer, contract: Contract) -> np.ndarray:
    """For each encoded column, the index of the contract feature it encodes."""
    position = {name: i for i, name in enumerate(contract.feature_names)}
    inputs = [str(name) for name in getattr(preprocess, "feature_names_in_", [])]
    strangers = sorted(set(inputs) - set(position))
    if strangers:
        raise UnsupportedModel(f"the pipeline takes columns the contract lacks: {strangers}")
    width = sum(s.stop - s.start for s in preprocess.output_indices_.values())
    owners = np.full(width, -1, dtype=np.intp)
    for name, transformer, spec in preprocess.transformers_:
        place = preprocess.output_indices_[name]
        if place.stop == place.start:
            continue
        columns = _column_names(spec, inputs)
        owners[place] = [position[column] for column in _outputs(name, transformer, columns)]
    if (owners < 0).any():
        raise UnsupportedModel("some encoded columns map to no contract feature")
    return owners


def _column_names(spec: object, inputs: list[str]) -> list[str]:
    """A ColumnTransformer's column selection as names (it may hold positions or a mask)."""
    if isinstance(spec, slice):
        return inputs[spec]
    values = list(np.atleast_1d(np.asarray(spec, dtype=object)))
    if values and all(isinstance(v, bool | np.bool_) for v in values):
        return [name for name, keep in zip(inputs, values, strict=True) if keep]
    return [inputs[int(v)] if isinstance(v, int | np.integer) else str(v) for v in values]


def _outputs(step: str, transformer: object, columns: list[str]) -> list[str]:
    """The input column behind each output column of one fitted transformer."""
    if isinstance(transformer, OneHotEncoder):
        widths = _one_hot_widths(transformer)
        owners = [column for column, w in zip(columns, widths, strict=True) for _ in range(w)]
        names = [str(name) for name in transformer.get_feature_names_out(columns)]
        if len(names) != len(owners) or any(
            not name.startswith(f"{owner}_") for name, owner in zip(names, owners, strict=True)
        ):
            raise UnsupportedModel(f"cannot map step {step!r}'s one-hot columns to its inputs")
        return owners
    if isinstance(transformer, str):
        if transformer == "passthrough":
            return columns
        raise UnsupportedModel(f"step {step!r} is {transformer!r}")
    try:
        names = [str(name) for name in transformer.get_feature_names_out(columns)]  # type: ignore[attr-defined]
    except (AttributeError, ValueError) as error:
        raise UnsupportedModel(f"step {step!r} does not name its output columns") from error
    unknown = [name for name in names if name not in columns]
    if unknown:
        raise UnsupportedModel(f"step {step!r} makes columns that are no input: {unknown[:3]}")
    return names


def _one_hot_widths(encoder: OneHotEncoder) -> list[int]:
    """Output columns per input: its categories, the infrequent ones sharing one, less a drop."""
    infrequent = getattr(encoder, "infrequent_categories_", None)
    dropped = getattr(encoder, "drop_idx_", None)
    widths = []
    for i, categories in enumerate(encoder.categories_):
        width = len(categories)
        if infrequent is not None and infrequent[i] is not None:
            width -= len(infrequent[i]) - 1
        if dropped is not None and dropped[i] is not None:
            width -= 1
        widths.append(width)
    return widths


def _final_margin_estimator(estimator: object) -> object:
    """The estimator whose decision function is the margin: a calibrated model's single inner
    estimator (`ensemble=False`), unwrapped from a frozen one."""
    if isinstance(estimator, CalibratedClassifierCV):
        fitted = getattr(estimator, "calibrated_classifiers_", None)
        if fitted is None:
            raise UnsupportedModel("the CalibratedClassifierCV is not fitted")
        if len(fitted) != 1:
            raise UnsupportedModel(
                f"a CalibratedClassifierCV averaging {len(fitted)} models has no single margin; "
                "fit it with ensemble=False"
            )
        estimator = fitted[0].estimator
    if isinstance(estimator, FrozenEstimator):
        estimator = estimator.estimator
    return estimator


def build_explainer(pipeline: Pipeline, contract: Contract, background: pd.DataFrame) -> Explainer:
    """The exact explainer for a fitted recipe pipeline (a ColumnTransformer, then the model).

    `background` (customers as cleaned data holds them, e.g. 1000 training rows) sets the
    linear base; raises UnsupportedModel for any pipeline it cannot attribute exactly."""
    if not isinstance(pipeline, Pipeline):
        raise UnsupportedModel(f"expected a fitted sklearn Pipeline, got {type(pipeline).__name__}")
    shape = " -> ".join(type(step).__name__ for _, step in pipeline.steps)
    if len(pipeline.steps) != 2 or not isinstance(pipeline.steps[0][1], ColumnTransformer):
        raise UnsupportedModel(
            f"cannot explain a pipeline {shape}: expected ColumnTransformer -> {SUPPORTED}"
        )
    preprocess = pipeline.steps[0][1]
    try:
        check_is_fitted(pipeline)
    except NotFittedError as error:
        raise UnsupportedModel(f"the pipeline {shape} is not fitted") from error
    estimator = _final_margin_estimator(pipeline.steps[-1][1])
    if isinstance(estimator, LogisticRegression):
        if np.asarray(estimator.coef_).shape[0] != 1:
            raise UnsupportedModel("a multiclass LogisticRegression has no single churn margin")
        return LinearExplainer(
            preprocess, estimator, contract, _owners(preprocess, contract), background
        )
    if isinstance(estimator, HistGradientBoostingClassifier):
        if estimator.n_trees_per_iteration_ != 1:
            raise UnsupportedModel("a multiclass HistGradientBoostingClassifier has no one margin")
        return TreePathExplainer(preprocess, estimator, contract, _owners(preprocess, contract))
    raise UnsupportedModel(
        f"cannot explain a pipeline ending in {type(estimator).__name__} exactly "
        f"({shape}); supported: {SUPPORTED}"
    )


def top_reasons(explanation: Explanation, frame: pd.DataFrame, k: int = 3) -> list[list[Reason]]:
    """Per row of `frame` (the rows explained, in order): up to k features raising churn risk,
    largest first; fewer when fewer raise it."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    contributions = explanation.contributions
    if len(frame) != len(contributions):
        raise ValueError(f"{len(frame)} rows given for an explanation of {len(contributions)}")
    names = explanation.feature_names
    kinds = explanation.kinds or ("",) * len(names)
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :k]
    chosen = np.take_along_axis(contributions, order, axis=1)
    columns: dict[int, np.ndarray] = {}
    reasons: list[list[Reason]] = []
    for i in range(len(contributions)):
        row: list[Reason] = []
        for j, contribution in zip(order[i], chosen[i], strict=True):
            if not contribution > 0:
                break
            if j not in columns:
                columns[j] = frame[names[j]].to_numpy(dtype=object)
            value = _plain(columns[j][i], kinds[j])
            row.append(Reason(names[j], value, float(contribution), _text(names[j], value)))
        reasons.append(row)
    return reasons


def _plain(value: object, kind: str) -> object:
    """A JSON-ready Python value: None when missing, bool for a boolean, int for a whole
    integer feature, float for a number; categories as they are."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):  # type: ignore[arg-type]
        return None
    if kind == "boolean":
        return bool(value)
    if isinstance(value, np.generic):
        value = value.item()
    if kind == "integer" and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _text(feature: str, value: object) -> str:
    if value is None:
        return f"{feature} is missing"
    if isinstance(value, bool):
        return f"{feature} is {'true' if value else 'false'}"
    if isinstance(value, float):
        return f"{feature} is {_number(value)}"
    return f"{feature} is {value}"


def _number(value: float) -> str:
    """Whole numbers without a decimal point, others to at most four decimals."""
    if not math.isfinite(value):
        return str(value)
    if value.is_integer():
        return str(int(value))
    return f"{value:.4f}".rstrip("0").rstrip(".")
