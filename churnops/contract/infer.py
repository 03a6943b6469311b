"""Draft a contract from a data file's columns, for a person to review before training.

Pure: it sees DataFrames (text columns, as `read_customer_file` reads a CSV), never files.
Large files are fed chunk by chunk into a `DataProfile` (what each column holds, kept small),
and `draft_contract` turns the profile into a `Contract` plus notes that explain every guess.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

import numpy as np
import pandas as pd
from pydantic import ValidationError

from churnops.contract.schema import (
    DERIVED_ID,
    Contract,
    Feature,
    Scalar,
    Target,
    label_key,
    parse_boolean,
)

DEFAULT_MAX_CATEGORIES = 50
# Column names that usually hold the churn label, compared without case, spaces or underscores.
TARGET_NAMES = (
    "churn",
    "churned",
    "is_churn",
    "is_churned",
    "has_churned",
    "did_churn",
    "churn_flag",
    "churn_label",
    "exited",
    "attrition",
    "attrition_flag",
    "cancelled",
    "canceled",
    "is_cancelled",
    "cancellation",
    "left",
    "target",
    "label",
    "y",
)
# Target values that usually mean "this customer churned" (compared with `label_key`).
POSITIVE_WORDS = frozenset(
    {"yes", "y", "true", "t", "1", "churn", "churned", "exited", "left", "lost"}
    | {"cancelled", "canceled", "attrited", "attrited customer", "inactive", "closed"}
)
# First words of column names that usually hold a customer key ("accountId", "user_id").
ID_WORDS = frozenset({"customer", "account", "user", "client", "member", "subscriber"})
# Two-valued spellings read as a boolean column (each pair compared with `label_key`).
BOOLEAN_PAIRS = (
    frozenset({"true", "false"}),
    frozenset({"t", "f"}),
    frozenset({"yes", "no"}),
    frozenset({"y", "n"}),
    frozenset({"1", "0"}),
)
# Cells that mean "missing" in some exports: drafted as the contract's `missing_values` when
# they are the only non-numbers of a numeric column and no other column uses them as a value.
MISSING_MARKERS = frozenset({"na", "n/a", "nan", "null", "none", "?", "-", "missing", "#n/a"})
# The contract's default and largest `max_id_length`: a longer column cannot be the id.
_ID_LENGTH = Contract.model_fields["max_id_length"]
DEFAULT_ID_LENGTH: int = _ID_LENGTH.default
MAX_ID_LENGTH: int = next(bound.le for bound in _ID_LENGTH.metadata if hasattr(bound, "le"))
# Numbers kept per column to pick a typical example value.
SAMPLE_SIZE = 10_000
# Significant digits of drafted ranges and examples.
DIGITS = 6


class InferError(ValueError):
    """The data cannot be drafted into a contract (no target, a constant target...)."""


def _cell(value: object) -> str:
    """A cell as text, stripped; "" for blank or missing (typed Parquet values included)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


@dataclass
class ColumnProfile:
    """What one column holds so far: counts, a few distinct values, numeric range."""

    name: str
    max_values: int
    rows: int = 0
    blanks: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    too_many_values: bool = False
    seen: set[str] | None = field(default_factory=set)
    numeric: bool = True
    whole: bool = True
    leading_zeros: bool = False
    not_numbers: Counter[str] = field(default_factory=Counter)
    minimum: float = math.inf
    maximum: float = -math.inf
    sample: Counter[float] = field(default_factory=Counter)
    longest: int = 0

    @property
    def filled(self) -> int:
        return self.rows - self.blanks

    @property
    def unique(self) -> bool:
        """Every non-blank value differs (and there is more than one row)."""
        return self.seen is not None and self.filled > 1

    def add(self, column: pd.Series) -> None:
        """Count the column's distinct values; everything else looks at those only, so a chunk
        of 100k rows with a few hundred distinct values costs a few hundred checks."""
        raw = column.value_counts(dropna=False, sort=False)
        cells = [_cell(value) for value in raw.index]
        counts = raw.groupby(np.asarray(cells, dtype=object), sort=False).sum()
        self.rows += int(raw.sum())
        self.blanks += int(counts.pop("")) if "" in counts.index else 0
        if counts.empty:
            return
        counts = counts.sort_values(ascending=False)
        values = pd.Series(counts.index, dtype=object)
        self._count(counts)
        self._track_uniqueness(counts)
        self.longest = max(self.longest, int(values.str.len().max()))
        if self.numeric:
            self._add_numbers(values, counts.to_numpy())

    def _count(self, counts: pd.Series) -> None:
        """Counts of the first `max_values + 1` distinct values (enough to tell the limit)."""
        known = counts.index.isin(list(self.counts))
        for value, count in counts[known].items():
            self.counts[value] += int(count)
        room = self.max_values + 1 - len(self.counts)
        if room > 0:
            for value, count in counts[~known].head(room).items():
                self.counts[value] = int(count)
        if len(self.counts) > self.max_values:
            self.too_many_values = True

    def _track_uniqueness(self, counts: pd.Series) -> None:
        if self.seen is None:
            return
        if int(counts.iloc[0]) > 1 or not self.seen.isdisjoint(counts.index):
            self.seen = None
        else:
            self.seen.update(counts.index)

    def _add_numbers(self, values: pd.Series, weights: np.ndarray) -> None:
        numbers = pd.to_numeric(values, errors="coerce").astype("float64").to_numpy()
        bad = ~np.isfinite(numbers)
        if bad.any():
            self.not_numbers.update(dict(zip(values[bad], weights[bad], strict=True)))
            if {value.lower() for value in self.not_numbers} - MISSING_MARKERS:
                self.numeric = False
                return
            numbers, values, weights = numbers[~bad], values[~bad], weights[~bad]
        if not len(numbers):
            return
        if values.str.match(r"^[+-]?0\d").any():
            self.leading_zeros = True
        self.whole = self.whole and bool((numbers == np.floor(numbers)).all())
        if not self.whole:
            self.seen = None  # measurements, never keys
        self.minimum = min(self.minimum, float(numbers.min()))
        self.maximum = max(self.maximum, float(numbers.max()))
        for number, weight in zip(numbers[:SAMPLE_SIZE], weights[:SAMPLE_SIZE], strict=True):
            if number in self.sample or len(self.sample) < SAMPLE_SIZE:
                self.sample[float(number)] += int(weight)

    def typical(self) -> float:
        """The median of the sampled numbers (weighted by how often each appears)."""
        numbers = np.array(sorted(self.sample))
        weights = np.cumsum([self.sample[number] for number in numbers])
        return float(numbers[np.searchsorted(weights, weights[-1] / 2)])

    @property
    def is_number(self) -> bool:
        """Every non-blank cell is a finite number (and no code like `00123`)."""
        return self.numeric and not self.not_numbers and not self.leading_zeros

    @property
    def missing_markers(self) -> list[str]:
        """`NA`-style cells in an otherwise numeric column (that has numbers too)."""
        if not self.numeric or not self.not_numbers or self.minimum > self.maximum:
            return []
        return sorted(self.not_numbers)

    def boolean_keys(self) -> frozenset[str] | None:
        """The two spellings when the column is a yes/no, true/false or 0/1 flag."""
        if self.too_many_values:
            return None
        keys = frozenset(label_key(value) for value in self.counts)
        return keys if keys in BOOLEAN_PAIRS else None


@dataclass
class DataProfile:
    """Column profiles of a whole file, built one chunk at a time."""

    max_categories: int = DEFAULT_MAX_CATEGORIES
    columns: dict[str, ColumnProfile] = field(default_factory=dict)
    rows: int = 0

    def add(self, chunk: pd.DataFrame) -> None:
        if not self.columns:
            for name in chunk.columns:
                self.columns[str(name)] = ColumnProfile(str(name), self.max_categories)
        self.rows += len(chunk)
        for name, profile in self.columns.items():
            profile.add(chunk[name])

    @classmethod
    def of(cls, frame: pd.DataFrame, max_categories: int = DEFAULT_MAX_CATEGORIES) -> DataProfile:
        profile = cls(max_categories)
        profile.add(frame)
        return profile


@dataclass(frozen=True)
class InferResult:
    contract: Contract
    notes: list[str]


def infer_contract(
    frame: pd.DataFrame,
    *,
    dataset: str,
    max_categories: int = DEFAULT_MAX_CATEGORIES,
    target: str | None = None,
    id_column: str | None = None,
    no_id: bool = False,
) -> InferResult:
    """A draft contract for `frame` (text columns as read from a CSV, or typed Parquet)."""
    profile = DataProfile.of(frame, max_categories)
    return draft_contract(profile, dataset=dataset, target=target, id_column=id_column, no_id=no_id)


def draft_contract(
    profile: DataProfile,
    *,
    dataset: str,
    target: str | None = None,
    id_column: str | None = None,
    no_id: bool = False,
) -> InferResult:
    """Kinds, categories, ranges, nullability, target and id from a profile; `notes` say why."""
    if profile.rows == 0:
        raise InferError("the file has a header but no data rows")
    if len(profile.columns) < 2:
        only = next(iter(profile.columns), "")
        separated = ";" in only or "\t" in only
        hint = "; it looks separated by ';' or tabs: save it comma-separated" if separated else ""
        raise InferError(
            f"the file has one column ({only!r}): a churn dataset needs a target and features{hint}"
        )
    notes: list[str] = []
    columns = profile.columns
    target_name = _target_column(columns, target, notes)
    contract_target = _target(columns[target_name], notes)
    key = None if no_id else _id_column(profile, target_name, id_column, notes)
    if no_id:
        notes.append(
            f"no id column (--no-id): each row's id is derived from its values ({DERIVED_ID})"
        )
    kept = [
        column
        for name, column in columns.items()
        if name not in (target_name, key) and not _left_out_noted(column, profile.rows, notes)
    ]
    names = _feature_names([column.name for column in kept], taken=(target_name, key))
    markers = _missing_values(profile, notes)
    features = [
        _feature(column, names[column.name], profile.rows, markers, notes) for column in kept
    ]
    if not features:
        raise InferError("no feature column left once the target and id are set aside")
    max_id_length = DEFAULT_ID_LENGTH
    if key is not None and columns[key].longest > max_id_length:
        max_id_length = min(MAX_ID_LENGTH, columns[key].longest)
    notes.append(
        "ranges are the observed minimum and maximum: widen them to what is plausible, "
        "or new data outside them will be rejected"
    )
    notes.append("add a description to each feature, and gate slices (e.g. a plan or region)")
    header_match = "case_insensitive"
    if len({name.strip().casefold() for name in columns}) < len(columns):
        header_match = "exact"
        notes.append("some headers differ only in case: header_match is 'exact'")
    try:
        contract = Contract(
            dataset=dataset,
            id_column=key,
            max_id_length=max_id_length,
            target=contract_target,
            features=tuple(features),
            header_match=header_match,
            missing_values=tuple(sorted(markers)),
        )
    except ValidationError as exc:
        problems = "; ".join(error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise InferError(f"the drafted contract is not valid: {problems}") from None
    return InferResult(contract, notes)


def _normalized(name: str) -> str:
    """Lower-case words joined by `_`, in any script: `Monthly Charges ($)` -> `monthly_charges`,
    `Größe (cm)` -> `größe_cm`."""
    return re.sub(r"\W+", "_", name.strip().lower()).strip("_")


def _feature_names(headers: list[str], taken: Iterable[str | None]) -> dict[str, str]:
    """Header -> feature name. A header that is an identifier in any script (`tenure`, `年齢`,
    `Größe`) is kept; others are normalised, numbered `_2`, `_3` when that repeats a name, and
    `column_N` (N its position) when nothing is left. Names never repeat case-insensitively."""
    kept = {header for header in headers if header.isidentifier() and header != DERIVED_ID}
    used = {name.strip().casefold() for name in [*taken, *kept] if name is not None}
    names: dict[str, str] = {}
    for position, header in enumerate(headers, start=1):
        if header in kept:
            names[header] = header
            continue
        base = _normalized(header) or f"column_{position}"
        if base == DERIVED_ID:
            base = f"{DERIVED_ID}_value"
        name, copy = base, 1
        while name.casefold() in used:
            copy += 1
            name = f"{base}_{copy}"
        used.add(name.casefold())
        names[header] = name
    return names


def _find(columns: dict[str, ColumnProfile], name: str) -> str | None:
    """A column by exact, then case-insensitive name."""
    if name in columns:
        return name
    matches = [column for column in columns if column.strip().casefold() == name.casefold()]
    return matches[0] if len(matches) == 1 else None


def _target_column(columns: dict[str, ColumnProfile], wanted: str | None, notes: list[str]) -> str:
    if wanted is not None:
        found = _find(columns, wanted)
        if found is None:
            raise InferError(
                f"target column {wanted!r} is not in the file; its columns are "
                + ", ".join(columns)
            )
        notes.append(f"target {found!r}: given with --target")
        return found
    by_name = {_normalized(column): column for column in columns}
    for name in TARGET_NAMES:
        if name in by_name:
            notes.append(f"target {by_name[name]!r}: guessed from its name (--target changes it)")
            return by_name[name]
    churny = [column for column in columns if "churn" in column.lower()]
    if len(churny) == 1:
        notes.append(f"target {churny[0]!r}: the only column named like churn (use --target)")
        return churny[0]
    raise InferError(
        "no target column found: none is named like a churn label ("
        + ", ".join(TARGET_NAMES[:8])
        + ", ...); name it with --target COLUMN"
    )


def _scalar(value: str) -> Scalar:
    """`1` as a number, anything else as written."""
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if math.isfinite(number) and number == int(number) else value


def _target(column: ColumnProfile, notes: list[str]) -> Target:
    name = column.name
    if column.too_many_values:
        raise InferError(
            f"target {name!r} has more than {column.max_values} distinct values: a churn "
            "target has two (churned or not); pick another column with --target"
        )
    spellings: dict[str, list[str]] = {}
    for value, _count in column.counts.most_common():
        spellings.setdefault(label_key(value), []).append(value)
    if not spellings:
        raise InferError(f"target {name!r} is blank in every row")
    if len(spellings) == 1:
        only = next(iter(spellings.values()))[0]
        raise InferError(
            f"target {name!r} has one value ({only!r}) in every row: a model needs both "
            "churned and retained customers"
        )
    if len(spellings) > 2:
        shown = ", ".join(repr(values[0]) for values in list(spellings.values())[:6])
        raise InferError(
            f"target {name!r} has {len(spellings)} distinct values ({shown}); a churn target "
            "has two: map them to two values or pick another column with --target"
        )
    if column.blanks:
        notes.append(
            f"target {name!r} is blank in {column.blanks:,} row(s): `contract check` reports "
            "them; fill or drop those rows before training"
        )
    keys = list(spellings)
    positive_keys = [
        key
        for key in keys
        if (key in POSITIVE_WORDS or "churn" in key) and not key.startswith(("not", "no ", "non"))
    ]
    if len(positive_keys) == 1:
        positive = positive_keys[0]
        why = "it reads as churned"
    else:
        totals = {key: sum(column.counts[v] for v in spellings[key]) for key in keys}
        positive = min(keys, key=lambda key: (totals[key], key))
        why = "the rarer value (churners are usually the minority); check it"
    negative = next(key for key in keys if key != positive)
    positive_value = _scalar(spellings[positive][0])
    negative_value = _scalar(spellings[negative][0])
    notes.append(
        f"target {name!r}: positive (churned) = {positive_value!r} because {why}; "
        f"negative = {negative_value!r}"
    )
    return Target(name=name, positive=(positive_value,), negative=(negative_value,))


def _words(name: str) -> list[str]:
    """`accountId` -> [account, id]; `user_id` -> [user, id]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [word.lower() for word in re.split(r"[^A-Za-z0-9]+", spaced) if word]


def _named_like_id(name: str) -> bool:
    words = _words(name)
    if not words:
        return False
    if words[-1] in {"id", "uuid", "key"}:
        return True
    return words[0] in ID_WORDS and (len(words) == 1 or words[-1] in {"number", "no", "code"})


def _id_candidate(column: ColumnProfile, rows: int) -> bool:
    return (
        column.unique
        and column.blanks == 0
        and column.longest <= MAX_ID_LENGTH
        and not (column.is_number and not column.whole)
        and (rows > column.max_values or _named_like_id(column.name))
    )


def _id_column(
    profile: DataProfile, target_name: str, wanted: str | None, notes: list[str]
) -> str | None:
    columns = profile.columns
    if wanted is not None:
        found = _find(columns, wanted)
        if found is None or found == target_name:
            raise InferError(f"id column {wanted!r} is not a feature column of the file")
        column = columns[found]
        problems = []
        if not column.unique:
            problems.append("repeats values (cleaning keeps the last row of each id)")
        if column.blanks:
            problems.append(f"is blank in {column.blanks:,} row(s) (rejected by check)")
        notes.append(f"id column {found!r}: given with --id" + "".join(f"; {p}" for p in problems))
        return found
    candidates = [
        name
        for name, column in columns.items()
        if name != target_name and _id_candidate(column, profile.rows)
    ]
    named = [name for name in candidates if _named_like_id(name)]
    text = [name for name in candidates if not columns[name].is_number]
    chosen = (named or text or [None])[0]
    if chosen is None:
        notes.append(
            f"no id column: no column is unique per row and named like an id; each row's id is "
            f"derived from its values ({DERIVED_ID}) — use --id COLUMN if the file has one"
        )
        return None
    why = "named like an id" if chosen in named else "the only text column"
    notes.append(f"id column {chosen!r}: a different value in every row, {why} (use --id/--no-id)")
    return chosen


def _left_out(column: ColumnProfile, rows: int) -> str | None:
    """Why a column is not a feature, if it should not be one."""
    if column.filled == 0:
        return "it is blank in every row"
    if not (column.unique and rows > column.max_values):
        return None
    if not column.is_number:
        return "it has a different value in every row (free text or a key cannot generalise)"
    if column.whole and (
        _named_like_id(column.name) or column.maximum - column.minimum + 1 == column.filled
    ):
        return "it numbers the rows (a different whole number in every row)"
    return None


def _left_out_noted(column: ColumnProfile, rows: int, notes: list[str]) -> bool:
    reason = _left_out(column, rows)
    if reason is not None:
        notes.append(f"column {column.name!r} left out: {reason}")
    return reason is not None


def _missing_values(profile: DataProfile, notes: list[str]) -> set[str]:
    """`NA`-style cells of numeric columns, unless another column holds one as a real value
    (`NA` for North America): the contract's `missing_values` apply to every column."""
    wanted = {
        marker: name
        for name, column in profile.columns.items()
        for marker in column.missing_markers
    }
    used_elsewhere = {
        marker
        for marker, owner in wanted.items()
        for name, column in profile.columns.items()
        if name != owner and marker in column.counts and not column.missing_markers
    }
    markers = set(wanted) - used_elsewhere
    if markers:
        shown = ", ".join(repr(marker) for marker in sorted(markers))
        notes.append(f"missing_values: {shown} read as blank (they fill otherwise numeric columns)")
    return markers


def _feature(
    column: ColumnProfile, feature_name: str, rows: int, markers: set[str], notes: list[str]
) -> Feature:
    name = column.name
    marked = bool(column.missing_markers) and set(column.missing_markers) <= markers
    spec: dict[str, object] = {"name": feature_name, "nullable": column.blanks > 0 or marked}
    if feature_name != name:
        spec["aliases"] = (name,)
        notes.append(f"column {name!r} is called {feature_name!r} (the header is an alias)")
    if column.blanks:
        notes.append(f"{name!r} is nullable: blank in {column.blanks:,} of {rows:,} rows")
    if column.missing_markers and not marked:
        shown = ", ".join(repr(m) for m in column.missing_markers[:5])
        notes.append(
            f"{name!r} is numeric except for {shown}, which other columns use as values, so it "
            "is drafted as categorical; blank those cells and infer again"
        )
    elif marked:
        notes.append(
            f"{name!r} is nullable: {column.not_numbers.total():,} cell(s) of it are missing_values"
        )
    booleans = column.boolean_keys()
    if booleans is not None:
        spec.update(kind="boolean", example=parse_boolean(_most_common(column)) is True)
        notes.append(f"{name!r} is boolean: its values are {sorted(column.counts)}")
    elif column.is_number or (marked and not column.leading_zeros):
        _numeric(spec, column)
    else:
        _categorical(spec, column, notes)
    if len(column.counts) == 1 and not column.too_many_values:
        notes.append(f"{name!r} has one value in every row: it cannot help the model; drop it?")
    return Feature.model_validate(spec)


def _most_common(column: ColumnProfile) -> str:
    return column.counts.most_common(1)[0][0]


def _numeric(spec: dict[str, object], column: ColumnProfile) -> None:
    typical = column.typical()
    if column.whole:
        spec.update(
            kind="integer",
            minimum=float(column.minimum),
            maximum=float(column.maximum),
            example=round(typical),
        )
        return
    minimum = _round(column.minimum, ROUND_FLOOR)
    maximum = _round(column.maximum, ROUND_CEILING)
    spec.update(
        kind="numeric",
        minimum=minimum,
        maximum=maximum,
        example=min(max(_round(typical, ROUND_HALF_EVEN), minimum), maximum),
    )


def _round(number: float, rounding: str) -> float:
    """`number` to `DIGITS` significant digits, in the direction `rounding` says: a range is
    rounded outwards (floor the minimum, ceiling the maximum) so the file it was drafted from
    stays inside it (1234564.7 -> at most 1234570, never 1234560)."""
    if number == 0 or not math.isfinite(number):
        return float(number)
    shortest = Decimal(repr(number))  # the digits as written (30.1), not the binary expansion
    step = Decimal(1).scaleb(shortest.adjusted() - DIGITS + 1)
    return float(shortest.quantize(step, rounding=rounding))


def _categorical(spec: dict[str, object], column: ColumnProfile, notes: list[str]) -> None:
    name = column.name
    spec["kind"] = "categorical"
    if column.too_many_values:
        spec["example"] = column.counts.most_common(1)[0][0]
        notes.append(
            f"{name!r} is an open categorical: more than {column.max_values} distinct values, "
            "so models learn its categories from the training data and accept unseen ones"
        )
        return
    canonical: dict[str, str] = {}
    for value, _count in column.counts.most_common():
        canonical.setdefault(value.casefold(), value)
    merged = sorted(set(column.counts) - set(canonical.values()))
    if merged:
        shown = ", ".join(repr(value) for value in merged[:5])
        notes.append(f"{name!r}: {shown} differ only in case and are read as one category")
    spec["categories"] = tuple(sorted(canonical.values()))
    spec["example"] = column.counts.most_common(1)[0][0]
