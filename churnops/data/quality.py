"""Data-quality rules on cleaned customers, from the contract; Dagster asset checks are thin
wrappers over these."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from churnops.contract import Contract, Feature


@dataclass(frozen=True)
class QualityResult:
    passed: bool
    summary: str
    details: dict[str, float | int | str] = field(default_factory=dict)


def _dtype_fits(feature: Feature, dtype: object) -> bool:
    """The dtype cleaning gives each kind: booleans and nullable integers are float64."""
    if feature.kind == "categorical":
        return isinstance(dtype, pd.CategoricalDtype)
    if feature.kind == "integer" and not feature.nullable:
        return pd.api.types.is_integer_dtype(dtype)
    return pd.api.types.is_float_dtype(dtype)


def schema_matches(frame: pd.DataFrame, contract: Contract) -> QualityResult:
    """Exactly the contract's columns, in order, with the dtypes cleaning promises."""
    problems: dict[str, str] = {}
    if tuple(frame.columns) != contract.columns:
        problems["columns"] = f"expected {list(contract.columns)}, got {list(frame.columns)}"
    for feature in contract.features:
        if feature.name in frame.columns and not _dtype_fits(feature, frame[feature.name].dtype):
            problems[feature.name] = f"dtype {frame[feature.name].dtype} is not {feature.kind}"
    target = contract.target.name
    if target in frame.columns and frame[target].dtype != "int8":
        problems[target] = f"dtype {frame[target].dtype} is not int8 (0/1)"
    summary = "schema matches the contract" if not problems else "; ".join(problems.values())
    return QualityResult(not problems, summary, problems)


def no_unexpected_nulls(frame: pd.DataFrame, contract: Contract) -> QualityResult:
    """Only the contract's nullable fields may be missing."""
    nullable = [feature.name for feature in contract.features if feature.nullable]
    counts = frame.isna().sum()
    bad = {str(col): int(n) for col, n in counts.items() if n and col not in nullable}
    allowed = {f"{col} (allowed)": int(counts[col]) for col in nullable if col in counts}
    summary = "no unexpected nulls" if not bad else f"nulls in {sorted(bad)}"
    return QualityResult(not bad, summary, {**bad, **allowed})


def _outside(feature: Feature, column: pd.Series) -> pd.Series:
    if feature.kind == "categorical":
        if feature.is_open:
            return pd.Series(False, index=column.index)
        return ~column.isin(feature.categories or ()) & column.notna()
    if feature.kind == "boolean":
        return ~column.isin((0.0, 1.0)) & column.notna()
    low = -float("inf") if feature.minimum is None else feature.minimum
    high = float("inf") if feature.maximum is None else feature.maximum
    return (column < low) | (column > high)


def values_in_range(frame: pd.DataFrame, contract: Contract) -> QualityResult:
    """Numbers inside the contract's bounds, closed categories inside its vocabulary, booleans
    0/1, the target 0/1."""
    bad: dict[str, int] = {}
    for feature in contract.features:
        count = int(_outside(feature, frame[feature.name]).sum())
        if count:
            bad[feature.name] = count
    target = frame[contract.target.name]
    labels_outside = int((~target.isin((0, 1))).sum())
    if labels_outside:
        bad[contract.target.name] = labels_outside
    summary = "all values in range" if not bad else f"out-of-range values in {sorted(bad)}"
    return QualityResult(not bad, summary, bad)


def unique_customer_ids(frame: pd.DataFrame, contract: Contract) -> QualityResult:
    """Customer ids are keys. Derived ids (no id column) may repeat: identical rows are kept."""
    duplicates = int(frame[contract.id_name].duplicated().sum())
    if not contract.has_id:
        summary = f"ids derived from row content; {duplicates} identical rows"
        return QualityResult(True, summary, {"duplicate_ids": duplicates})
    summary = "customer ids are unique" if not duplicates else f"{duplicates} duplicate ids"
    return QualityResult(duplicates == 0, summary, {"duplicate_ids": duplicates})


def label_balance(
    frame: pd.DataFrame, contract: Contract, min_minority_share: float = 0.05
) -> QualityResult:
    """A label that is almost all one class cannot train or evaluate a useful model."""
    positive_share = float(frame[contract.target.name].mean()) if len(frame) else 0.0
    minority = min(positive_share, 1.0 - positive_share)
    passed = minority >= min_minority_share
    summary = f"churn rate {positive_share:.1%}; minority share {minority:.1%}"
    if not passed:
        summary += f" is below {min_minority_share:.0%}"
    return QualityResult(passed, summary, {"churn_rate": round(positive_share, 4)})
