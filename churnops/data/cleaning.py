"""Turn raw customer rows (strings from a CSV, or typed synthetic rows) into typed, validated rows.

Every problem is raised as a ContractError naming the source, the row and the column, so a user
can fix their file; nothing is silently dropped except exact duplicate customer ids (counted).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.contract import (
    FEATURES,
    ID_COLUMN,
    MAX_ID_LENGTH,
    RAW_COLUMNS,
    TARGET_COLUMN,
    TARGET_VALUES,
    ContractError,
    FeatureSpec,
)

MAX_REPORTED_ROWS = 5


@dataclass(frozen=True)
class CleanResult:
    frame: pd.DataFrame
    duplicates_dropped: int


def _row_label(index: pd.Index, source: str) -> str:
    """Human row numbers: for a file, the line in the file (header is line 1)."""
    rows = [int(i) + 2 for i in index[:MAX_REPORTED_ROWS]]
    more = f" (+{len(index) - MAX_REPORTED_ROWS} more)" if len(index) > MAX_REPORTED_ROWS else ""
    noun = "line" if source != "synthetic" else "row"
    return f"{noun} {', '.join(map(str, rows))}{more}"


def _fail(source: str, column: str, bad: pd.Index, what: str, sample: object) -> ContractError:
    shown = repr(sample)
    if len(shown) > 80:  # a huge field must not become a huge message
        shown = f"{shown[:60]}... ({len(shown):,} characters)"
    where = f"{source}: column '{column}' {_row_label(bad, source)}"
    return ContractError(f"{where}: {what} (got {shown})")


def check_columns(frame: pd.DataFrame, source: str) -> None:
    """Fail early, naming every missing column, before any row is looked at."""
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise ContractError(
            f"{source}: missing column(s) {', '.join(missing)}; "
            f"expected the Telco churn schema: {', '.join(RAW_COLUMNS)}"
        )
    if frame.empty:
        raise ContractError(f"{source}: no data rows")


def _as_categorical(values: pd.Series, spec_name: str, allowed: tuple[str, ...], source: str):
    if isinstance(values.dtype, pd.CategoricalDtype):
        unknown = set(values.cat.categories) - set(allowed)
        bad = values.index[values.isin(sorted(unknown)) if unknown else values.isna()]
        if len(bad):
            sample = values.loc[bad[0]]
            raise _fail(source, spec_name, bad, f"must be one of {list(allowed)}", sample)
        return values.cat.set_categories(list(allowed))
    text = values.astype("string").str.strip()
    result = pd.Categorical(text, categories=list(allowed))
    bad_mask = pd.isna(result)
    if bad_mask.any():
        bad = values.index[bad_mask]
        raise _fail(source, spec_name, bad, f"must be one of {list(allowed)}", values.loc[bad[0]])
    return pd.Series(result, index=values.index)


def _as_number(values: pd.Series, spec: FeatureSpec, source: str) -> pd.Series:
    if pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.astype("float64")
        blank = numbers.isna()
    else:
        text = values.astype("string").str.strip()
        blank = text.isna() | (text == "")
        numbers = pd.to_numeric(text.mask(blank), errors="coerce").astype("float64")
        unparsable = numbers.isna() & ~blank
        if unparsable.any():
            bad = values.index[unparsable]
            raise _fail(source, spec.name, bad, f"is not a {spec.kind}", values.loc[bad[0]])
    if blank.any() and not spec.nullable:
        raise _fail(source, spec.name, values.index[blank], "must not be blank", None)
    low, high = spec.minimum, spec.maximum
    out_of_range = (numbers < low) | (numbers > high)
    if out_of_range.any():
        bad = values.index[out_of_range]
        raise _fail(source, spec.name, bad, f"must be within [{low}, {high}]", numbers[bad[0]])
    if spec.kind == "integer":
        fractional = numbers.notna() & (numbers != np.floor(numbers))
        if fractional.any():
            bad = values.index[fractional]
            raise _fail(source, spec.name, bad, "must be a whole number", numbers[bad[0]])
        return numbers.astype("int64")
    return numbers


def clean_customers(raw: pd.DataFrame, source: str) -> CleanResult:
    """Type every contract column, reject rows that break it, drop duplicate ids (keep last)."""
    check_columns(raw, source)
    frame = raw.reset_index(drop=True)
    ids = frame[ID_COLUMN].astype("string").str.strip()
    blank_ids = ids.isna() | (ids == "")
    if blank_ids.any():
        raise _fail(source, ID_COLUMN, frame.index[blank_ids], "must not be blank", None)
    too_long = ids.str.len() > MAX_ID_LENGTH
    if too_long.any():
        first = ids[too_long].iloc[0]
        what = f"must be at most {MAX_ID_LENGTH} characters"
        raise _fail(source, ID_COLUMN, frame.index[too_long], what, first)
    columns: dict[str, object] = {ID_COLUMN: ids.astype(object)}
    for spec in FEATURES:
        if spec.kind == "categorical":
            columns[spec.name] = _as_categorical(
                frame[spec.name], spec.name, spec.categories, source
            )
        else:
            columns[spec.name] = _as_number(frame[spec.name], spec, source)
    columns[TARGET_COLUMN] = _as_categorical(
        frame[TARGET_COLUMN], TARGET_COLUMN, TARGET_VALUES, source
    )
    typed = pd.DataFrame(columns, index=frame.index)
    duplicated = typed[ID_COLUMN].duplicated(keep="last")
    cleaned = typed.loc[~duplicated].reset_index(drop=True)
    return CleanResult(frame=cleaned, duplicates_dropped=int(duplicated.sum()))
