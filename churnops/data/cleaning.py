"""Turn raw customer rows (strings from a CSV, or typed rows) into typed rows under a contract.

Headers are matched to the contract's names and aliases; each column is typed by its kind, and
every problem names the source, the line (a CSV file's line, else the row) and the column, so a
user can fix their file. Cells equal to one of the contract's `missing_values` read as blank.
Nothing is silently dropped except duplicate customer ids (counted). `contract_problems` lists
every problem (`churnops contract check`); `clean_customers` raises on the first ones.

Work is vectorized per column; a cell's text is interpreted once per distinct value, so files of
millions of rows with few distinct categories stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.contract import Contract, ContractError, Feature, derive_row_id, parse_boolean

MAX_REPORTED_ROWS = 5  # rows named in one ContractError message
MAX_REPORTED_COLUMNS = 3  # failing columns named in one ContractError message


@dataclass(frozen=True)
class CleanResult:
    frame: pd.DataFrame
    duplicates_dropped: int


@dataclass(frozen=True)
class Problem:
    """One way a file breaks its contract: where (a CSV file's line, else the 1-based row; None
    for the file or a whole column), the column as the contract names it ("" for the file) and
    what is wrong."""

    line: int | None
    column: str
    message: str
    source: str = ""

    def __str__(self) -> str:
        where = [f"{_numbering(self.source)[0]} {self.line}"] if self.line is not None else []
        if self.column:
            where.append(f"column '{self.column}'")
        prefix = f"{self.source}: " if self.source else ""
        return f"{prefix}{', '.join(where)}{': ' if where else ''}{self.message}"


@dataclass(frozen=True)
class _Issue:
    """Rows of one column that fail one rule: `bad` holds their positions."""

    column: str
    bad: np.ndarray
    rule: str
    shown: pd.Series  # the offending values, as read (or as parsed for range rules)


def _numbering(source: str) -> tuple[str, int]:
    """How a source names a row and what its first data row is called: a CSV file's lines count
    the header as line 1 (so an editor finds them); other sources (Parquet files, the synthetic
    generator, the prediction store) have no lines, so their rows count from 1."""
    return ("line", 2) if source.strip().lower().endswith(".csv") else ("row", 1)


def _line(position: int, source: str) -> int:
    """Where row `position` (0-based) of `source` is, as `_numbering` names it."""
    return int(position) + _numbering(source)[1]


def _shorten(value: object) -> str:
    """A value as the user wrote it; a huge field must not become a huge message."""
    shown = repr(value.item() if isinstance(value, np.generic) else value)
    if len(shown) > 80:
        shown = f"{shown[:60]}... ({len(shown):,} characters)"
    return shown


# Interpreting cells: each rule sees the distinct values of a column once.


def _is_blank(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and not value.strip()


def _text(value: object) -> str:
    """A non-blank cell as category text: stripped; whole numbers without a trailing `.0`."""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


_INVALID = object()  # what a reader returns for a cell that breaks its rule


@dataclass(frozen=True)
class _Read:
    """A column's cells interpreted, kept per distinct value: `codes` points each row at its
    entry of `results` (what it read as, None where blank or invalid; the last entry is the
    missing cell), so a caller that needs only codes (a categorical) never builds the values."""

    index: pd.Index
    codes: np.ndarray
    results: np.ndarray
    blank_of: np.ndarray
    invalid_of: np.ndarray

    @property
    def values(self) -> pd.Series:
        return pd.Series(self.results[self.codes], index=self.index, dtype=object)

    @property
    def blank(self) -> np.ndarray:
        return self.blank_of[self.codes]

    @property
    def invalid(self) -> np.ndarray:
        return self.invalid_of[self.codes]


def _interpret(values: pd.Series, read: Callable[[object], object]) -> _Read:
    """`read` applied to each distinct non-blank value once, spread back over the rows."""
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    distinct = [*np.asarray(uniques, dtype=object), None]  # code -1 (missing) reads as None
    blank = np.array([_is_blank(value) for value in distinct], dtype=bool)
    results = [None if empty else read(value) for value, empty in zip(distinct, blank, strict=True)]
    invalid = np.array([result is _INVALID for result in results], dtype=bool)
    mapped = np.array([None if result is _INVALID else result for result in results], dtype=object)
    return _Read(values.index, codes, mapped, blank, invalid)


class _Column:
    """One raw column being typed under its contract name, and the issues found on the way.
    `raw` is what the file holds (problems show it), `values` what is typed (markers blanked)."""

    def __init__(self, name: str, raw: pd.Series, markers: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.raw = raw
        self.values = _without_markers(raw, markers)
        self.issues: list[_Issue] = []

    def fail(self, mask: np.ndarray, rule: str, shown: pd.Series | None = None) -> None:
        bad = np.flatnonzero(mask)
        if len(bad):
            source = self.raw if shown is None else shown
            self.issues.append(_Issue(self.name, bad, rule, source.iloc[bad]))

    def require(self, blank: np.ndarray, nullable: bool) -> None:
        if not nullable:
            self.fail(blank, "must not be blank")


def _without_markers(values: pd.Series, markers: frozenset[str]) -> pd.Series:
    """`values` with the cells that are a missing value marker (after stripping) blanked; each
    distinct text is looked at once."""
    if not markers or pd.api.types.is_numeric_dtype(values.dtype):
        return values
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    marked = [isinstance(value, str) and value.strip() in markers for value in uniques]
    mask = np.array([*marked, False], dtype=bool)[codes]  # code -1 (missing) stays as it is
    return values.mask(mask) if mask.any() else values


def _categorical(column: _Column, feature: Feature) -> pd.Series:
    """Closed: the contract's categories in order, matched exactly, else case-insensitively.
    Open: the listed categories, then the other values seen (sorted)."""
    listed = list(feature.categories or ())
    exact = {value: value for value in listed}
    folded = {value.casefold(): value for value in listed}

    def read(value: object) -> object:
        text = _text(value)
        match = exact.get(text) or folded.get(text.casefold())
        if match is not None:
            return match
        return text if feature.is_open else _INVALID

    cells = _interpret(column.values, read)
    column.require(cells.blank, feature.nullable)
    column.fail(cells.invalid, f"must be one of {listed}")
    seen = {result for result in cells.results if result is not None}
    extras = sorted(seen - set(listed)) if feature.is_open else []
    categories = [*listed, *extras]
    # Codes straight from the distinct values: no second pass hashing every cell's text.
    position = {category: code for code, category in enumerate(categories)}
    code_of = np.array([position.get(result, -1) for result in cells.results], dtype=np.int64)
    categorical = pd.Categorical.from_codes(code_of[cells.codes], categories=categories)
    return pd.Series(categorical, index=column.values.index)


def _boolean(column: _Column, feature: Feature) -> pd.Series:
    """0.0/1.0 (NaN when blank and nullable) from any spelling `parse_boolean` knows."""

    def read(value: object) -> object:
        parsed = parse_boolean(value)
        return _INVALID if parsed is None else float(parsed)

    cells = _interpret(column.values, read)
    column.require(cells.blank, feature.nullable)
    column.fail(cells.invalid, "must be true or false (or yes/no, 1/0)")
    return cells.values.astype("float64")


def _as_numbers(values: pd.Series) -> tuple[pd.Series, np.ndarray, np.ndarray]:
    """float64 numbers, and which cells were blank or not numbers (True/False read as 1/0).
    Text is parsed once per distinct value."""
    if pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values):
        numbers = values.astype("float64")
        return numbers, numbers.isna().to_numpy(), np.zeros(len(values), dtype=bool)
    codes, uniques = pd.factorize(values.astype(object), use_na_sentinel=True)
    distinct = pd.Series(np.asarray(uniques, dtype=object), dtype=object)
    parsed = np.append(pd.to_numeric(distinct, errors="coerce").to_numpy(dtype="float64"), np.nan)
    blank = np.ones(len(parsed), dtype=bool)
    for position in np.flatnonzero(np.isnan(parsed[:-1])):
        blank[position] = _is_blank(distinct.iloc[position])
    blank[~np.isnan(parsed)] = False
    numbers = pd.Series(parsed[codes], index=values.index)
    return numbers, blank[codes], np.isnan(parsed)[codes] & ~blank[codes]


def _number(column: _Column, feature: Feature) -> pd.Series:
    """float64 for numeric, int64 for integer (float64 when nullable), within the range."""
    numbers, blank, invalid = _as_numbers(column.values)
    column.require(blank, feature.nullable)
    column.fail(invalid, f"is not a {'whole number' if feature.kind == 'integer' else 'number'}")
    infinite = np.isinf(numbers.to_numpy())
    column.fail(infinite, "must be a finite number")
    numbers = numbers.mask(infinite)
    low, high = feature.bounds
    column.fail(((numbers < low) | (numbers > high)).to_numpy(), _range(feature))
    if feature.kind == "integer":
        fractional = (numbers != np.floor(numbers)) & numbers.notna()
        column.fail(fractional.to_numpy(), "must be a whole number")
        if not feature.nullable:
            return numbers.fillna(0).astype("int64")
    return numbers


def _range(feature: Feature) -> str:
    low = "-inf" if feature.minimum is None else f"{feature.minimum:g}"
    high = "inf" if feature.maximum is None else f"{feature.maximum:g}"
    return f"must be within [{low}, {high}]"


def _target(column: _Column, contract: Contract) -> pd.Series:
    """int8: 1 for a positive value, 0 for a negative one; anything else is a problem."""
    target = contract.target

    def read(value: object) -> object:
        label = target.encode(value)
        return _INVALID if label is None else label

    cells = _interpret(column.values, read)
    column.require(cells.blank, nullable=False)
    allowed = [*target.positive, *target.negative]
    column.fail(cells.invalid, f"must be one of {allowed} (churned: {list(target.positive)})")
    labels = cells.values.to_numpy()
    return pd.Series(np.where(pd.isna(labels), 0, labels).astype(np.int8), index=cells.values.index)


def _ids(column: _Column, contract: Contract) -> pd.Series:
    """Stripped text keys; blank or longer than the contract allows is a problem."""
    values = column.values
    if values.dtype == object and pd.api.types.infer_dtype(values, skipna=False) == "string":
        return _text_ids(column, contract.max_id_length)
    if pd.api.types.is_float_dtype(values.dtype):  # 1001.0 from a Parquet file is "1001"
        text = _interpret(values, _text).values.astype("string")
    else:
        text = values.astype("string").str.strip()
    blank = (text.isna() | (text == "")).to_numpy(dtype=bool)
    column.fail(blank, "must not be blank")
    limit = contract.max_id_length
    too_long = (text.str.len() > limit).fillna(False).to_numpy(dtype=bool)
    column.fail(too_long, f"must be at most {limit} characters")
    return text.astype(object)


def _text_ids(column: _Column, limit: int) -> pd.Series:
    """`_ids` for a column of text only (a Parquet string column, a CSV): stripped in plain
    Python, as pandas' string methods would, without their string-array round trip (the
    costliest step of cleaning a typed file)."""
    values = column.values.to_numpy()
    text = np.fromiter(map(str.strip, values), dtype=object, count=len(values))
    lengths = np.fromiter(map(len, text), dtype=np.int64, count=len(text))
    column.fail(lengths == 0, "must not be blank")
    column.fail(lengths > limit, f"must be at most {limit} characters")
    return pd.Series(text, index=column.values.index, dtype=object)


def _typed_feature(column: _Column, feature: Feature) -> pd.Series:
    if feature.kind == "categorical":
        return _categorical(column, feature)
    if feature.kind == "boolean":
        return _boolean(column, feature)
    return _number(column, feature)


def derived_ids(features: pd.DataFrame, contract: Contract) -> pd.Series:
    """`derive_row_id` of each row's typed feature values (what the API derives too)."""
    columns = [features[name].tolist() for name in contract.feature_names]
    ids = [derive_row_id(values) for values in zip(*columns, strict=True)]
    return pd.Series(ids, index=features.index, dtype=object)


# Whole files


def _missing_columns(raw: pd.DataFrame, contract: Contract, with_target: bool = True) -> list[str]:
    mapped = set(contract.header_mapping(raw.columns).values())
    required = contract.required_columns(with_target=with_target)
    return [name for name in required if name not in mapped]


def _repeated_columns(raw: pd.DataFrame, contract: Contract) -> dict[str, list[str]]:
    """Contract name -> the file's headers matching it, where more than one does (`Churn` and
    `churn`, or a name and its alias): which one holds the data is anyone's guess."""
    matches: dict[str, list[str]] = {}
    for header in raw.columns:
        for name in contract.header_mapping([header]).values():
            matches.setdefault(name, []).append(str(header))
    return {name: headers for name, headers in matches.items() if len(headers) > 1}


def _repeated_message(headers: list[str]) -> str:
    shown = ", ".join(_shorten(header) for header in headers)
    return f"{len(headers)} headers match this column ({shown}); keep one, rename or drop the rest"


def file_problems(
    raw: pd.DataFrame, source: str, contract: Contract, *, with_target: bool = True
) -> list[Problem]:
    """What is wrong with the file as a whole: missing or repeated columns, no rows. Cheap (no
    cell is read); empty means the cells can be checked. A file to score has no target."""
    missing = _missing_columns(raw, contract, with_target)
    problems = [
        Problem(
            None, name, f"missing column (or an alias of it); the file has {_headers(raw)}", source
        )
        for name in missing
    ]
    problems += [
        Problem(None, name, _repeated_message(headers), source)
        for name, headers in _repeated_columns(raw, contract).items()
    ]
    if not problems and raw.empty:
        problems.append(Problem(None, "", "no data rows", source))
    return problems


def _headers(raw: pd.DataFrame) -> str:
    headers = [str(h) for h in raw.columns]
    shown = ", ".join(_shorten(h) for h in headers[:30])
    return f"columns {shown}" + (f" (+{len(headers) - 30} more)" if len(headers) > 30 else "")


def _typed(
    raw: pd.DataFrame, contract: Contract, with_target: bool = True
) -> tuple[pd.DataFrame, list[_Issue]]:
    """Every contract column typed (rows with problems hold placeholders) and every issue."""
    mapping = contract.header_mapping(raw.columns)
    headers = list(raw.columns)
    # Rows are counted from 0 whatever the index; a file's chunk already is (no copy then).
    counted = isinstance(raw.index, pd.RangeIndex) and raw.index.equals(pd.RangeIndex(len(raw)))
    frame = {  # by position (`file_problems` has ruled out repeated headers)
        name: _column_at(raw, headers.index(header), counted) for header, name in mapping.items()
    }
    markers = frozenset(contract.missing_values)
    issues: list[_Issue] = []
    typed: dict[str, pd.Series] = {}
    if contract.id_column is not None:
        column = _Column(contract.id_column, frame[contract.id_column])
        typed[contract.id_column] = _ids(column, contract)
        issues += column.issues
    for feature in contract.features:
        column = _Column(feature.name, frame[feature.name], markers)
        typed[feature.name] = _typed_feature(column, feature)
        issues += column.issues
    if with_target:
        column = _Column(contract.target.name, frame[contract.target.name], markers)
        typed[contract.target.name] = _target(column, contract)
        issues += column.issues
    return pd.DataFrame(typed), issues


def _column_at(raw: pd.DataFrame, position: int, counted: bool) -> pd.Series:
    column = raw.iloc[:, position]
    return column if counted else column.reset_index(drop=True)


def contract_problems(
    raw: pd.DataFrame, source: str, contract: Contract, *, limit_per_column: int = 5
) -> list[Problem]:
    """Every way `raw` breaks `contract`: missing columns, else each bad cell with its line
    (at most `limit_per_column` per column, then a count of the rest). Empty: the file is good."""
    problems = file_problems(raw, source, contract)
    if problems:
        return problems
    _, issues = _typed(raw, contract)
    by_column: dict[str, list[_Issue]] = {}
    for issue in issues:
        by_column.setdefault(issue.column, []).append(issue)
    for column, column_issues in by_column.items():
        cells = sorted(
            (
                (int(position), index, value)
                for index, issue in enumerate(column_issues)
                for position, value in zip(
                    issue.bad[:limit_per_column],
                    issue.shown.iloc[:limit_per_column].tolist(),
                    strict=True,
                )
            ),
            key=lambda cell: cell[:2],
        )
        for position, index, value in cells[:limit_per_column]:
            message = f"{column_issues[index].rule} (got {_shorten(value)})"
            problems.append(Problem(_line(position, source), column, message, source))
        rest = sum(len(issue.bad) for issue in column_issues) - limit_per_column
        if rest > 0:
            problems.append(Problem(None, column, f"and {rest:,} more problem(s)", source))
    return problems


def _issue_message(issue: _Issue, source: str, first_row: int = 0) -> str:
    shown = issue.bad[:MAX_REPORTED_ROWS]
    rows = ", ".join(str(_line(first_row + p, source)) for p in shown)
    more = len(issue.bad) - MAX_REPORTED_ROWS
    rows += f" (+{more:,} more)" if more > 0 else ""
    got = _shorten(issue.shown.iloc[0])
    noun = _numbering(source)[0]
    return f"{source}: column '{issue.column}' {noun} {rows}: {issue.rule} (got {got})"


def _typed_or_raise(
    raw: pd.DataFrame, source: str, contract: Contract, *, with_target: bool, first_row: int
) -> pd.DataFrame:
    """The typed columns, or a `ContractError` naming source, column and line (counted from
    `first_row`, the 0-based position of `raw`'s first row in the file)."""
    missing = _missing_columns(raw, contract, with_target)
    if missing:
        expected = contract.required_columns(with_target=with_target)
        raise ContractError(
            f"{source}: missing column(s) {', '.join(missing)} of contract "
            f"'{contract.dataset}'; expected {', '.join(expected)} "
            f"(headers match case-insensitively or by alias); the file has {_headers(raw)}"
        )
    problems = file_problems(raw, source, contract, with_target=with_target)
    if problems:
        raise ContractError("\n".join(str(problem) for problem in problems))
    typed, issues = _typed(raw, contract, with_target)
    if issues:
        first = sorted(issues, key=lambda issue: int(issue.bad[0]))
        shown: list[_Issue] = []
        for issue in first:
            if issue.column not in {s.column for s in shown}:
                shown.append(issue)
        messages = [
            _issue_message(issue, source, first_row) for issue in shown[:MAX_REPORTED_COLUMNS]
        ]
        more = len({issue.column for issue in issues}) - len(messages)
        tail = f"\n(+{more} more column(s) with problems)" if more > 0 else ""
        raise ContractError("\n".join(messages) + tail)
    if contract.id_column is None:
        typed.insert(0, contract.id_name, derived_ids(typed, contract))
    return typed


def clean_customers(raw: pd.DataFrame, source: str, contract: Contract) -> CleanResult:
    """Cleaned data: exactly `contract.columns`, typed by kind. A file that breaks the contract
    raises `ContractError` naming source, column and line; duplicate ids are dropped (keeping the
    last); without an id column the key is derived from each row's features."""
    typed = _typed_or_raise(raw, source, contract, with_target=True, first_row=0)
    if contract.id_column is None:
        return CleanResult(frame=typed.loc[:, list(contract.columns)], duplicates_dropped=0)
    duplicated = typed[contract.id_column].duplicated(keep="last")
    cleaned = typed.loc[~duplicated, list(contract.columns)].reset_index(drop=True)
    return CleanResult(frame=cleaned, duplicates_dropped=int(duplicated.sum()))


def customers_to_score(
    raw: pd.DataFrame, source: str, contract: Contract, *, first_row: int = 0
) -> pd.DataFrame:
    """The key and the features of customers to score (a target column, if any, is ignored;
    every row is kept, in file order). `first_row` is where `raw` starts in the file, so a
    chunk's errors name the file's own line."""
    typed = _typed_or_raise(raw, source, contract, with_target=False, first_row=first_row)
    return typed.loc[:, [contract.id_name, *contract.feature_names]].reset_index(drop=True)
