"""Pydantic request/record models generated from the data contract (serving's input schema).

Every field is validated by its contract name (a header like `monthly charges` or `copy` is a
valid field); the Python attribute is the name itself when it is a plain identifier, so
`record.age` reads naturally, and a safe stand-in otherwise.
"""

from __future__ import annotations

import keyword
import math
import operator
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, create_model

from churnops.contract import Contract, Feature, derive_row_id

# Longest value of an open categorical field (a category is a label, not a document).
MAX_CATEGORY_LENGTH = 200
# The Python attribute of the id field, whatever the contract calls it.
ID_ATTRIBUTE = "record_id"

# Keyed by the whole contract: ranges and nullability shape the model but not the fingerprint.
_MODELS: dict[Contract, type[BaseModel]] = {}
# Keyed by fingerprint: a getter depends on the feature names only.
_GETTERS: dict[str, Callable[[BaseModel], Any]] = {}


def id_text(value: object) -> object:
    """A JSON number sent as an id becomes the text cleaning makes of the same cell in a
    Parquet file: 15634602 and 15634602.0 are "15634602" (a CSV cell is kept as written, so
    "15634602.0" stays that). Anything else is left for the string check to judge."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return value


# A customer id: text, or a JSON number taken as its text (see `id_text`).
IdText = Annotated[str, BeforeValidator(id_text)]


def _whole_number(value: object) -> object:
    """1.0 is the integer 1 (JSON writers often send whole numbers as floats); 1.5, text and
    booleans are left for the strict integer check to refuse."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def attribute_names(contract: Contract) -> dict[str, str]:
    """Contract name -> Python attribute of the record model, for every feature."""
    names: dict[str, str] = {}
    for index, feature in enumerate(contract.features):
        name = feature.name
        usable = (
            name.isidentifier()
            and not keyword.iskeyword(name)
            and not name.startswith("_")
            and not hasattr(BaseModel, name)
            and name != ID_ATTRIBUTE
        )
        names[name] = name if usable else f"feature_{index}"
    return names


def _annotation(feature: Feature) -> Any:
    if feature.kind == "categorical" and feature.is_open:
        return str
    if feature.kind == "categorical":
        return Literal[feature.categories]  # type: ignore[valid-type]
    if feature.kind == "boolean":
        return StrictBool
    if feature.kind == "integer":
        return Annotated[int, BeforeValidator(_whole_number)]
    return float


def _field(feature: Feature) -> tuple[Any, Any]:
    annotation = _annotation(feature)
    constraints: dict[str, Any] = {}
    if feature.kind in ("numeric", "integer"):
        constraints = {"ge": feature.minimum, "le": feature.maximum, "strict": True}
        if feature.kind == "numeric":
            constraints["allow_inf_nan"] = False
    elif feature.kind == "categorical" and feature.is_open:
        constraints = {"max_length": MAX_CATEGORY_LENGTH, "strict": True}
    if feature.nullable:
        annotation = annotation | None
    return annotation, Field(
        None if feature.nullable else ...,
        alias=feature.name,
        description=feature.description or None,
        json_schema_extra={"example": feature.example_value()},
        **constraints,
    )


def record_model(contract: Contract) -> type[BaseModel]:
    """The request model of one customer under `contract` (built once per contract)."""
    model = _MODELS.get(contract)
    if model is not None:
        return model
    fields: dict[str, Any] = {}
    if contract.id_column is not None:
        fields[ID_ATTRIBUTE] = (
            IdText | None,
            Field(
                None,
                alias=contract.id_column,
                max_length=contract.max_id_length,
                description="Customer id, echoed back for joins (a number reads as its text).",
            ),
        )
    attributes = attribute_names(contract)
    fields.update({attributes[f.name]: _field(f) for f in contract.features})
    config = ConfigDict(
        extra="forbid",
        serialize_by_alias=True,
        # BentoML's OpenAPI model knows the singular `example` keyword only.
        json_schema_extra={"example": contract.example_record()},
    )
    model = create_model(  # type: ignore[call-overload]
        "CustomerRecord",
        __config__=config,
        __doc__=(
            f"One customer of the '{contract.dataset}' contract "
            f"(the label `{contract.target.name}` is not sent)."
        ),
        **fields,
    )
    _MODELS[contract] = model
    return model


def record_id(record: BaseModel) -> str | None:
    """The id the client sent, or None (always None under a contract without an id column)."""
    return getattr(record, ID_ATTRIBUTE, None)


def _row_getter(contract: Contract) -> Callable[[BaseModel], Any]:
    getter = _GETTERS.get(contract.fingerprint)
    if getter is None:
        attributes = [attribute_names(contract)[name] for name in contract.feature_names]
        single = operator.attrgetter(attributes[0])
        getter = operator.attrgetter(*attributes) if len(attributes) > 1 else lambda r: (single(r),)
        _GETTERS[contract.fingerprint] = getter
    return getter


def records_to_rows(records: Sequence[BaseModel], contract: Contract) -> list[list[object]]:
    """Raw values in contract order, the input of `scoring.scorer` (None is missing; booleans
    stay True/False)."""
    getter = _row_getter(contract)
    return [list(getter(record)) for record in records]


# What `plain_record_reader` returns for a record it leaves to the pydantic model.
NOT_PLAIN = None
_INVALID = object()
PlainReader = Callable[[object], "tuple[str | None, list[object]] | None"]


def _plain_value(feature: Feature) -> Callable[[object], object]:
    """The value `record_model` would hold for a plainly valid JSON value of `feature`, else
    `_INVALID` (never a guess: anything unusual is left for the pydantic model to judge)."""
    low, high = feature.bounds
    nullable = feature.nullable

    if feature.kind == "categorical" and not feature.is_open:
        levels = frozenset(feature.categories or ())

        def closed(value: object) -> object:
            if type(value) is str and value in levels:
                return value
            return None if value is None and nullable else _INVALID

        return closed
    if feature.kind == "categorical":

        def opened(value: object) -> object:
            if type(value) is str and len(value) <= MAX_CATEGORY_LENGTH:
                return value
            return None if value is None and nullable else _INVALID

        return opened
    if feature.kind == "boolean":
        return lambda value: (
            value if type(value) is bool else None if value is None and nullable else _INVALID
        )
    if feature.kind == "integer":

        def integer(value: object) -> object:
            if type(value) is float and value.is_integer():
                value = int(value)
            if type(value) is int and low <= value <= high:
                return value
            return None if value is None and nullable else _INVALID

        return integer

    def number(value: object) -> object:
        if (type(value) is int and abs(value) < 2**53) or type(value) is float:
            value = float(value)  # the strict float field holds an int as a float
            if math.isfinite(value) and low <= value <= high:
                return value
        return None if value is None and nullable else _INVALID

    return number


def customer_rows(
    records: Sequence[BaseModel], contract: Contract
) -> list[tuple[str | None, list[object]]]:
    """(customer id, row) of validated records, as `plain_record_reader` reads plain ones: the
    id the client sent under a contract with an id column, else one derived from the row."""
    rows = records_to_rows(records, contract)
    if contract.has_id:
        return [(record_id(r), row) for r, row in zip(records, rows, strict=True)]
    return [(derive_row_id(row), row) for row in rows]


def plain_record_reader(contract: Contract) -> PlainReader:
    """(customer id, row) of a decoded JSON record that `record_model(contract)` accepts
    without any coercion beyond the ones it documents, as it would read it; None for anything
    else, which then goes through the model itself (and its error messages). A fast path for
    the common case that never decides a request the model would decide differently
    (tests/unit/serving/test_fast_path.py compares the two on fuzzed records)."""
    readers = [(feature.name, _plain_value(feature)) for feature in contract.features]
    id_name, id_limit = contract.id_column, contract.max_id_length
    allowed = frozenset(contract.feature_names) | ({id_name} if id_name else frozenset())
    required = frozenset(f.name for f in contract.features if not f.nullable)

    def read(record: object) -> tuple[str | None, list[object]] | None:
        if type(record) is not dict or not required <= record.keys() <= allowed:
            return NOT_PLAIN
        row = []
        for name, reader in readers:
            value = reader(record.get(name))
            if value is _INVALID:
                return NOT_PLAIN
            row.append(value)
        if id_name is None:
            return derive_row_id(row), row
        customer = record.get(id_name)
        if type(customer) is int:
            customer = str(customer)
        if customer is None or (type(customer) is str and len(customer) <= id_limit):
            return customer, row
        return NOT_PLAIN

    return read


# Requests of this many records or more are read a column at a time.
COLUMNS_FROM = 8
PlainRecordsReader = Callable[[list[object]], "list[tuple[str | None, list[object]]] | None"]


def plain_records_reader(contract: Contract) -> PlainRecordsReader:
    """`plain_record_reader` for a whole request: every record's (customer id, row), or None
    when any record is not plain. A long request is read a column at a time (a closed
    category's column is one set comparison, the rest one `map` per column) rather than a
    Python call per value; a short one record by record, which costs less below a few records."""
    read_one = plain_record_reader(contract)
    columns = [_plain_column(feature) for feature in contract.features]
    names = list(contract.feature_names)
    id_name, id_limit = contract.id_column, contract.max_id_length
    allowed = frozenset(names) | ({id_name} if id_name else frozenset())
    required = frozenset(f.name for f in contract.features if not f.nullable)
    # Record length -> (a getter of every field as one tuple, whether the id is the last).
    # An itemgetter of one name returns the bare value: a one-feature contract without ids
    # gathers record by record.
    getters: dict[int, tuple[Callable[[dict], tuple], bool]] = {}
    if len(names) > 1:
        getters[len(names)] = (operator.itemgetter(*names), False)
    if id_name:
        getters[len(names) + 1] = (operator.itemgetter(*names, id_name), True)

    def customer_id(value: object) -> object:
        if type(value) is int:
            value = str(value)
        if value is None or (type(value) is str and len(value) <= id_limit):
            return value
        return _INVALID

    def gathered(records: list[object]) -> tuple[list[Sequence[object]], Sequence[object]] | None:
        """(feature columns, ids) of records that are dicts holding the same fields, every
        feature and the id or every feature alone, gathered in C; None for any other batch."""
        if set(map(type, records)) != {dict} or len(lengths := set(map(len, records))) != 1:
            return None
        if (getter := getters.get(lengths.pop())) is None:
            return None
        take, with_id = getter
        try:
            columns = list(zip(*map(take, records), strict=True))
        except KeyError:  # as many fields, not these ones
            return None
        return (columns[: len(names)], columns[-1]) if with_id else (columns, None)

    def read(records: list[object]) -> list[tuple[str | None, list[object]]] | None:
        if len(records) < COLUMNS_FROM:
            read = [read_one(record) for record in records]
            return NOT_PLAIN if NOT_PLAIN in read else read  # type: ignore[return-value]
        if (found := gathered(records)) is not None:
            raw, given_ids = found
        else:
            for record in records:
                if type(record) is not dict or not required <= record.keys() <= allowed:
                    return NOT_PLAIN
            raw = [[record.get(name) for record in records] for name in names]  # type: ignore[union-attr]
            given_ids = [record.get(id_name) for record in records] if id_name else None  # type: ignore[union-attr]
        values = []
        for column, read_column in zip(raw, columns, strict=True):
            read = read_column(column)
            if read is None:
                return NOT_PLAIN
            values.append(read)
        rows = list(map(list, zip(*values, strict=True)))
        if id_name is None:
            return [(derive_row_id(row), row) for row in rows]
        ids = given_ids if given_ids is not None else [None] * len(rows)
        if not (set(map(type, ids)) == {str} and max(map(len, ids)) <= id_limit):
            ids = list(map(customer_id, ids))
            if _INVALID in ids:
                return NOT_PLAIN
        return list(zip(ids, rows, strict=True))  # type: ignore[arg-type]

    return read


def _plain_column(feature: Feature) -> Callable[[Sequence[object]], Sequence[object] | None]:
    """A column of `feature`'s raw JSON values as `_plain_value` reads each, or None when any
    is not plain."""
    categories = feature.categories or ()
    if (
        feature.kind == "categorical"
        and not feature.is_open
        and all(type(level) is str for level in categories)
    ):
        # Only a str equals a str: membership alone is `_plain_value`'s type-and-level check.
        levels = frozenset(categories) | ({None} if feature.nullable else set())

        def closed(column: Sequence[object]) -> Sequence[object] | None:
            try:
                return column if levels.issuperset(column) else None
            except TypeError:  # an unhashable value (a list, an object)
                return None

        return closed
    value = _plain_value(feature)
    uniform = _uniform_column(feature)

    def each(column: Sequence[object]) -> Sequence[object] | None:
        if uniform(column):
            return column
        read = list(map(value, column))
        return None if _INVALID in read else read

    return each


def _uniform_column(feature: Feature) -> Callable[[Sequence[object]], bool]:
    """Whether a (non-empty) column is one `_plain_value` would return unchanged, judged with a
    few passes in C: every value of the one JSON type the field holds as it is, inside its
    range. False only means "look at each value"."""
    low, high = feature.bounds
    if feature.kind == "boolean":
        return lambda column: set(map(type, column)) == {bool}
    if feature.kind == "categorical":  # an open one (closed ones are a set comparison)
        return lambda column: (
            set(map(type, column)) == {str} and max(map(len, column)) <= MAX_CATEGORY_LENGTH
        )
    if feature.kind == "integer":
        return lambda column: (
            set(map(type, column)) == {int} and low <= min(column) and max(column) <= high
        )

    def floats(column: Sequence[object]) -> bool:
        # A NaN or an infinity makes the sum one; so may an overflow, which only costs the
        # slower look.
        return (
            set(map(type, column)) == {float}
            and math.isfinite(sum(column))  # type: ignore[arg-type]
            and low <= min(column)  # type: ignore[type-var]
            and max(column) <= high  # type: ignore[type-var]
        )

    return floats
