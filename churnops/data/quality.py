"""Data-quality rules on cleaned customers; Dagster asset checks are thin wrappers over these."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from churnops.contract import (
    FEATURES,
    ID_COLUMN,
    RAW_COLUMNS,
    TARGET_COLUMN,
    TARGET_POSITIVE,
)


@dataclass(frozen=True)
class QualityResult:
    passed: bool
    summary: str
    details: dict[str, float | int | str] = field(default_factory=dict)


def schema_matches(frame: pd.DataFrame) -> QualityResult:
    """Exactly the contract's columns, in order, with the dtypes cleaning promises."""
    problems: dict[str, str] = {}
    if tuple(frame.columns) != RAW_COLUMNS:
        problems["columns"] = f"expected {list(RAW_COLUMNS)}, got {list(frame.columns)}"
    for spec in FEATURES:
        if spec.name not in frame.columns:
            continue
        dtype = frame[spec.name].dtype
        ok = {
            "categorical": isinstance(dtype, pd.CategoricalDtype),
            "integer": pd.api.types.is_integer_dtype(dtype),
            "float": pd.api.types.is_float_dtype(dtype),
        }[spec.kind]
        if not ok:
            problems[spec.name] = f"dtype {dtype} is not {spec.kind}"
    summary = "schema matches the contract" if not problems else "; ".join(problems.values())
    return QualityResult(not problems, summary, problems)


def no_unexpected_nulls(frame: pd.DataFrame) -> QualityResult:
    """Only nullable contract fields (TotalCharges for new customers) may be missing."""
    nullable = {spec.name for spec in FEATURES if spec.nullable}
    counts = frame.isna().sum()
    bad = {col: int(n) for col, n in counts.items() if n and col not in nullable}
    allowed = {f"{col} (allowed)": int(counts[col]) for col in nullable if col in counts}
    summary = "no unexpected nulls" if not bad else f"nulls in {sorted(bad)}"
    return QualityResult(not bad, summary, {**bad, **allowed})


def values_in_range(frame: pd.DataFrame) -> QualityResult:
    """Numbers inside the contract's bounds, categories inside the contract's vocabulary."""
    bad: dict[str, int] = {}
    for spec in FEATURES:
        column = frame[spec.name]
        if spec.kind == "categorical":
            outside = ~column.isin(spec.categories) & column.notna()
        else:
            outside = (column < spec.minimum) | (column > spec.maximum)
        if int(outside.sum()):
            bad[spec.name] = int(outside.sum())
    summary = "all values in range" if not bad else f"out-of-range values in {sorted(bad)}"
    return QualityResult(not bad, summary, bad)


def unique_customer_ids(frame: pd.DataFrame) -> QualityResult:
    duplicates = int(frame[ID_COLUMN].duplicated().sum())
    summary = "customer ids are unique" if not duplicates else f"{duplicates} duplicate ids"
    return QualityResult(duplicates == 0, summary, {"duplicate_ids": duplicates})


def label_balance(frame: pd.DataFrame, min_minority_share: float = 0.05) -> QualityResult:
    """A label that is almost all one class cannot train or evaluate a useful model."""
    positive_share = float((frame[TARGET_COLUMN] == TARGET_POSITIVE).mean())
    minority = min(positive_share, 1.0 - positive_share)
    passed = minority >= min_minority_share
    summary = f"churn rate {positive_share:.1%}; minority share {minority:.1%}"
    if not passed:
        summary += f" is below {min_minority_share:.0%}"
    return QualityResult(passed, summary, {"churn_rate": round(positive_share, 4)})
