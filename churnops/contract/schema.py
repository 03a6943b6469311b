"""The data contract as a validated model: what a churn dataset's columns are and mean.

One `Contract` drives raw-data cleaning and checks, the recipes' preprocessing, the MLflow
signature, the serving request schema, the prediction store and drift, so training and serving
can never disagree about a field. It is read from a YAML/TOML file (`churnops.contract.files`).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from functools import cached_property
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Kind = Literal["numeric", "integer", "categorical", "boolean"]
KINDS: tuple[str, ...] = get_args(Kind)
# The key of a customer when the contract names no id column: derived from the row's content.
DERIVED_ID = "row_id"
# Spellings of a boolean cell, compared lower-case after stripping.
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1", "1.0"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0", "0.0"})

Scalar = str | int | float | bool


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def label_key(value: object) -> str:
    """How a target or boolean cell is compared: `1`, `1.0`, ` 1 ` and True all read as "1";
    text is stripped and lower-cased."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float):
        number = float(value)
        if math.isfinite(number) and number == int(number):
            return str(int(number))
        return repr(number)
    text = str(value).strip().lower()
    try:
        number = float(text)
    except ValueError:
        return text
    return label_key(number) if math.isfinite(number) else text


class Feature(_Strict):
    """One model input column."""

    name: str = Field(min_length=1)
    kind: Kind
    description: str = ""
    example: Scalar | None = None
    # categorical: the allowed values. Omitted = open (learned from the training data).
    categories: tuple[str, ...] | None = None
    # categorical with `categories`: also accept values outside them (scored as unseen).
    open_categories: bool = False
    minimum: float | None = None
    maximum: float | None = None
    nullable: bool = False
    # Other headers this column may have in a file (e.g. after a rename upstream).
    aliases: tuple[str, ...] = ()

    @property
    def bounds(self) -> tuple[float, float]:
        """(minimum, maximum), an open end as an infinity: what a value is compared against."""
        low = -math.inf if self.minimum is None else self.minimum
        high = math.inf if self.maximum is None else self.maximum
        return low, high

    @model_validator(mode="after")
    def _fits_its_kind(self) -> Feature:
        if self.kind != "categorical" and (self.categories is not None or self.open_categories):
            raise ValueError(f"{self.name}: categories are only for kind 'categorical'")
        if self.kind == "categorical" and self.categories is not None:
            if not self.categories:
                raise ValueError(f"{self.name}: categories is empty; omit it for open categories")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError(f"{self.name}: categories repeat a value")
        if self.kind not in ("numeric", "integer") and (
            self.minimum is not None or self.maximum is not None
        ):
            raise ValueError(f"{self.name}: minimum/maximum are only for numeric or integer")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"{self.name}: minimum {self.minimum} > maximum {self.maximum}")
        problem = self._example_problem()
        if problem is not None:
            raise ValueError(f"{self.name}: example {self.example!r} {problem}")
        return self

    def _example_problem(self) -> str | None:
        """Why `example` is not a value of this feature (it becomes the API's example)."""
        value = self.example
        if value is None:
            return None
        if self.kind == "boolean":
            return None if parse_boolean(value) is not None else "is not a boolean (true/false)"
        if self.kind == "categorical":
            if not isinstance(value, str):
                return "is not text (quote it)"
            closed = self.categories is not None and not self.open_categories
            if closed and value not in (self.categories or ()):
                return f"is not one of the categories {list(self.categories or ())}"
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"is not a number (kind {self.kind!r})"
        if not math.isfinite(value):
            return "is not a finite number"
        if self.kind == "integer" and value != int(value):
            return "is not a whole number (kind 'integer')"
        if self.minimum is not None and value < self.minimum:
            return f"is below the minimum {self.minimum}"
        if self.maximum is not None and value > self.maximum:
            return f"is above the maximum {self.maximum}"
        return None

    @property
    def is_open(self) -> bool:
        """Values outside a known list are accepted (and scored as unseen)."""
        return self.kind == "categorical" and (self.categories is None or self.open_categories)

    @property
    def is_numeric(self) -> bool:
        """Fed to models as a number (booleans as 0/1)."""
        return self.kind != "categorical"

    def example_value(self) -> Scalar | None:
        """The documented example, else a valid value of the right type."""
        if self.example is not None:
            return self.example
        if self.kind == "categorical":
            return self.categories[0] if self.categories else "example"
        if self.kind == "boolean":
            return False
        low = self.minimum if self.minimum is not None else 0.0
        return int(low) if self.kind == "integer" else float(low)


def _label_keys(values: Iterable[Scalar]) -> set[str]:
    """The cells a list of label values accepts: a YAML `true`/`false` stands for every
    spelling of it (`true`, `yes`, `1`, ...), as in a boolean feature."""
    keys: set[str] = set()
    for value in values:
        if isinstance(value, bool):
            keys |= TRUE_WORDS if value else FALSE_WORDS
        else:
            keys.add(label_key(value))
    return keys


class Target(_Strict):
    """The label column and which of its values mean "churned"."""

    name: str = Field(min_length=1)
    positive: tuple[Scalar, ...] = Field(min_length=1)
    negative: tuple[Scalar, ...] = Field(min_length=1)
    aliases: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _disjoint(self) -> Target:
        both = _label_keys(self.positive) & _label_keys(self.negative)
        if both:
            raise ValueError(f"value(s) {sorted(both)} are both positive and negative")
        return self

    @property
    def positive_label(self) -> str:
        """How an answer names a churner (the first positive value)."""
        return str(self.positive[0])

    @property
    def negative_label(self) -> str:
        return str(self.negative[0])

    def encode(self, value: object) -> int | None:
        """1 for a positive value, 0 for a negative one, None for anything else."""
        key = label_key(value)
        if key in _label_keys(self.positive):
            return 1
        if key in _label_keys(self.negative):
            return 0
        return None

    def canonical(self, value: object) -> str | None:
        """The label text the prediction store keeps and answers use (`positive_label` or
        `negative_label`) for any accepted spelling of `value`; None when it is no label."""
        encoded = self.encode(value)
        if encoded is None:
            return None
        return self.positive_label if encoded else self.negative_label


class Contract(_Strict):
    """A churn dataset's schema; `fingerprint` identifies what a model was trained on."""

    version: Literal[1] = 1
    dataset: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    description: str = ""
    # The customer key. Omitted: a stable id is derived from each row's feature values.
    id_column: str | None = None
    id_aliases: tuple[str, ...] = ()
    max_id_length: int = Field(64, gt=0, le=512)
    target: Target
    features: tuple[Feature, ...] = Field(min_length=1)
    # How file headers are matched to names and aliases.
    header_match: Literal["exact", "case_insensitive"] = "case_insensitive"
    # Cell texts that mean "no value" besides a blank (e.g. NA, null, ?): compared after
    # stripping, case-sensitive. They change how a file is read, not the model's inputs.
    missing_values: tuple[str, ...] = ()
    # Segments the promotion gate judges: `column` (one per value) or `column:e0,e1,...`.
    slices: tuple[str, ...] = ()

    @field_validator("features")
    @classmethod
    def _unique_features(cls, features: tuple[Feature, ...]) -> tuple[Feature, ...]:
        seen: set[str] = set()
        for feature in features:
            if feature.name in seen:
                raise ValueError(f"feature {feature.name!r} is listed twice")
            seen.add(feature.name)
        return features

    @field_validator("missing_values")
    @classmethod
    def _stripped_markers(cls, markers: tuple[str, ...]) -> tuple[str, ...]:
        """Cells are compared stripped, so a marker is too; a blank one would mean nothing."""
        stripped = tuple(marker.strip() for marker in markers)
        if "" in stripped:
            raise ValueError("a missing value marker must not be blank (blank cells already are)")
        return stripped

    @model_validator(mode="after")
    def _names_do_not_clash(self) -> Contract:
        owners: dict[str, str] = {}
        for owner, names in self._headers():
            for name in names:
                key = self._header_key(name)
                if key in owners and owners[key] != owner:
                    raise ValueError(f"header {name!r} would match both {owners[key]} and {owner}")
                owners[key] = owner
        if self.id_column is None and DERIVED_ID in {f.name for f in self.features}:
            raise ValueError(f"a feature may not be called {DERIVED_ID!r} without an id_column")
        for rule in self.slices:
            column = rule.split(":", 1)[0].strip()
            if column not in {f.name for f in self.features}:
                raise ValueError(f"slice {rule!r}: {column!r} is not a feature")
        return self

    def _headers(self) -> Iterable[tuple[str, Sequence[str]]]:
        if self.id_column is not None:
            yield f"id column {self.id_column!r}", (self.id_column, *self.id_aliases)
        yield f"target {self.target.name!r}", (self.target.name, *self.target.aliases)
        for feature in self.features:
            yield f"feature {feature.name!r}", (feature.name, *feature.aliases)

    def _header_key(self, header: str) -> str:
        text = str(header).strip()
        return text.casefold() if self.header_match == "case_insensitive" else text

    # Names, in contract order.
    @cached_property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    @cached_property
    def by_name(self) -> dict[str, Feature]:
        return {f.name: f for f in self.features}

    @cached_property
    def categorical(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.kind == "categorical")

    @cached_property
    def numeric(self) -> tuple[str, ...]:
        """Numeric, integer and boolean features: what models take as numbers."""
        return tuple(f.name for f in self.features if f.is_numeric)

    @property
    def id_name(self) -> str:
        """The key column of cleaned data, the API and the prediction log."""
        return self.id_column or DERIVED_ID

    @property
    def has_id(self) -> bool:
        return self.id_column is not None

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Columns of cleaned data: key, features, target."""
        return (self.id_name, *self.feature_names, self.target.name)

    def header_mapping(self, headers: Iterable[str]) -> dict[str, str]:
        """File header -> contract name, for every header that names a contract column."""
        wanted: dict[str, str] = {}
        for _owner, names in self._headers():
            for name in names:
                wanted[self._header_key(name)] = names[0]
        mapping: dict[str, str] = {}
        for header in headers:
            canonical = wanted.get(self._header_key(header))
            if canonical is not None and canonical not in mapping.values():
                mapping[header] = canonical
        return mapping

    def required_columns(self, *, with_target: bool = True) -> tuple[str, ...]:
        """Contract names a file must provide."""
        key = (self.id_column,) if self.id_column else ()
        target = (self.target.name,) if with_target else ()
        return (*key, *self.feature_names, *target)

    def example_record(self) -> dict[str, Scalar | None]:
        """A valid request record (features, and the id when the contract has one)."""
        record: dict[str, Scalar | None] = {}
        if self.id_column:
            record[self.id_column] = "customer-0001"
        record.update({f.name: f.example_value() for f in self.features})
        return record

    @cached_property
    def fingerprint(self) -> str:
        """16 hex digits over what a model consumes: names, kinds, categories, the id and the
        target's labels. Not what only changes which rows validation accepts (ranges,
        nullability, missing markers) nor prose (descriptions, examples, aliases, slices), so
        widening a range after training keeps the champion servable."""
        essence = {
            "id": self.id_column,
            "target": {
                "name": self.target.name,
                "positive": sorted(label_key(v) for v in self.target.positive),
                "negative": sorted(label_key(v) for v in self.target.negative),
            },
            "features": [
                f.model_dump(include={"name", "kind", "categories", "open_categories"})
                for f in self.features
            ],
        }
        text = json.dumps(essence, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def derive_row_id(values: Sequence[object]) -> str:
    """A stable key from a row's typed feature values, in contract order: the same customer
    sent twice gets the same id, in a file and through the API alike."""
    parts = []
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            parts.append("")
        elif isinstance(value, bool):
            parts.append("1" if value else "0")
        elif isinstance(value, int | float):
            parts.append(label_key(value))
        else:
            parts.append(str(value))
    digest = hashlib.sha256("\x1f".join(parts).encode()).hexdigest()
    return f"r{digest[:15]}"


def parse_boolean(value: object) -> bool | None:
    """True/False for a recognised spelling, None for anything else (blank included)."""
    key = label_key(value)
    if key in TRUE_WORDS:
        return True
    if key in FALSE_WORDS:
        return False
    return None
