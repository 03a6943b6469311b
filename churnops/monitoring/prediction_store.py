"""The prediction store: every served prediction and every late ground-truth label.

Addressed by a SQLAlchemy URL (SQLite in WAL mode by default, Postgres at scale). The Bento
service writes to it; the monitoring sensor, the drift report and retraining read from it. Its
columns come from the data contract (`store_schema`), so a logged prediction is a contract
record; a store created under another contract is refused with a message naming it.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Connection,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    case,
    cast,
    create_engine,
    delete,
    event,
    func,
    insert,
    inspect,
    select,
    table,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select

from churnops.contract import Contract, Feature
from churnops.monitoring import partitions
from churnops.monitoring.partitions import PREDICTIONS

FEEDBACK = "feedback"
# Scores of the versions a shadow rollout runs beside the champion (`serving/rollout.py`):
# keyed by (request_id, model_version), so a live comparison joins them to the logged
# prediction and its label by request id, one row per version.
SHADOW_PREDICTIONS = "shadow_predictions"
SCORE_COLUMN = "churn_probability"
# The served answer (`positive_label` / `negative_label`) is stored as `churn`; a read window
# names it `predicted_churn`, apart from the target's own column (which may be `churn` too).
ANSWER_COLUMN = "churn"
PREDICTED_COLUMN = "predicted_churn"
# The store's own columns, beside the contract's.
_PREDICTION_META = ("request_id", "ts", "model_version")
_LABEL_BY_REQUEST = "label_by_request"
# Longest stored categorical value or label (open categories are capped at 200 by the API).
TEXT_LENGTH = 200
# The packed read (below) keeps its mixed-radix number within a signed 64-bit integer.
MAX_PACKED_RADIX = 2**62
PACKED = "packed_categories"


def name_clashes(contract: Contract) -> list[str]:
    """Contract names the store cannot keep apart from its own columns or from each other, in
    a table or in a read window. SQL compares names case-insensitively, so `TS` is `ts`."""
    id_name, features, target = contract.id_name, contract.feature_names, contract.target.name
    places = {
        "table predictions": (
            *_PREDICTION_META,
            SCORE_COLUMN,
            ANSWER_COLUMN,
            id_name,
            *features,
        ),
        "table feedback": ("id", "ts", "request_id", id_name, target),
        "a read window": (
            *_PREDICTION_META,
            SCORE_COLUMN,
            PREDICTED_COLUMN,
            _LABEL_BY_REQUEST,
            PACKED,
            id_name,
            *features,
            target,
        ),
    }
    clashes: set[str] = set()
    for place, names in places.items():
        seen: dict[str, str] = {}
        for name in names:
            first = seen.setdefault(name.casefold(), name)
            if first is not name:
                clashes.add(f"{first!r} and {name!r} ({place})")
    return sorted(clashes)


class StoreSchemaError(RuntimeError):
    """The store's tables were created for another contract, or the contract's names clash
    with the store's own columns."""


def _column_type(feature: Feature) -> Any:
    if feature.kind == "categorical":
        return String(TEXT_LENGTH)
    if feature.kind == "boolean":
        return Boolean(create_constraint=False)
    # A contract's integers need not fit 32 bits (PostgreSQL's INTEGER); SQLite's are 64 anyway.
    return BigInteger if feature.kind == "integer" else Float


@dataclass(frozen=True)
class StoreSchema:
    """The store's tables for one contract."""

    contract: Contract
    metadata: MetaData
    predictions: Table
    feedback: Table
    shadow: Table

    @cached_property
    def prediction_columns(self) -> tuple[str, ...]:
        """Column order of `write_prediction_rows` tuples."""
        return tuple(column.name for column in self.predictions.columns)

    @cached_property
    def window_columns(self) -> tuple[str, ...]:
        """Columns of a read window before the label: the answer is `PREDICTED_COLUMN`."""
        return tuple(
            PREDICTED_COLUMN if name == ANSWER_COLUMN else name for name in self.prediction_columns
        )

    @cached_property
    def sqlite_insert(self) -> str:
        """`INSERT OR IGNORE INTO predictions (request_id, ...) VALUES (?, ...)`: positional, in
        order; a request id already stored is skipped (see `write_prediction_rows`)."""
        statement = insert(self.predictions).prefix_with("OR IGNORE")
        return str(statement.compile(dialect=sqlite.dialect()))

    @cached_property
    def packed_features(self) -> tuple[Feature, ...]:
        """Closed categorical fields read as one packed integer (see `_packed_categories`)."""
        packed, radix = [], 1
        for feature in self.contract.features:
            if feature.kind != "categorical" or feature.is_open:
                continue
            size = len(feature.categories or ()) + 1
            if radix * size >= MAX_PACKED_RADIX:
                continue
            packed.append(feature)
            radix *= size
        return tuple(packed)


# Keyed by the whole contract: nullability shapes the tables but not the fingerprint.
_SCHEMAS: dict[Contract, StoreSchema] = {}


def store_schema(contract: Contract) -> StoreSchema:
    """The tables for `contract` (built once per contract)."""
    schema = _SCHEMAS.get(contract)
    if schema is not None:
        return schema
    clashes = name_clashes(contract)
    if clashes:
        raise StoreSchemaError(
            f"contract '{contract.dataset}': the prediction store cannot keep these columns "
            f"apart: {'; '.join(clashes)}; rename them in the contract"
        )
    metadata = MetaData()
    id_length = max(64, contract.max_id_length)
    predictions = Table(
        PREDICTIONS,
        metadata,
        Column("request_id", String(64), primary_key=True),
        Column("ts", Float, nullable=False, index=True),
        # No index on model_version or the customer id: no query filters on them, and every
        # index is paid on each logged prediction (benchmarks/serving.py, logging on vs off).
        Column("model_version", String(64), nullable=False),
        Column(contract.id_name, String(id_length)),
        *(Column(f.name, _column_type(f), nullable=f.nullable) for f in contract.features),
        Column(SCORE_COLUMN, Float, nullable=False),
        Column(ANSWER_COLUMN, String(64), nullable=False),
    )
    feedback = Table(
        FEEDBACK,
        metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", Float, nullable=False),
        Column("request_id", String(64), index=True),
        Column(contract.id_name, String(id_length), index=True),
        # The target's canonical label (`contract.target.positive_label` / `negative_label`).
        Column(contract.target.name, String(64), nullable=False),
    )
    shadow = Table(
        SHADOW_PREDICTIONS,
        metadata,
        Column("request_id", String(64), primary_key=True),
        Column("model_version", String(64), primary_key=True),
        Column("ts", Float, nullable=False),
        Column(SCORE_COLUMN, Float, nullable=False),
        Column(ANSWER_COLUMN, String(64), nullable=False),
    )
    schema = StoreSchema(contract, metadata, predictions, feedback, shadow)
    _SCHEMAS[contract] = schema
    return schema


def prediction_columns(contract: Contract) -> tuple[str, ...]:
    return store_schema(contract).prediction_columns


def connect(url: str, contract: Contract | None = None) -> Engine:
    """Engine for the store; SQLite gets WAL and a busy timeout for many writers.

    With a contract its tables are created (or checked) now; without, nothing touches the store
    yet (it may be down when a server starts) and the first read or write does it."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": 30})

        @event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
    else:
        engine = create_engine(url, pool_pre_ping=True)
    if contract is not None:
        ensure_tables(engine, contract)
    return engine


_ready: weakref.WeakKeyDictionary[Engine, set[str]] = weakref.WeakKeyDictionary()
_tables_lock = threading.Lock()


def ensure_tables(engine: Engine, contract: Contract) -> None:
    """Create missing tables and check existing ones match `contract`, once per engine and
    contract (the request threads and the log writer race)."""
    if contract.fingerprint in _ready.get(engine, ()):
        return
    schema = store_schema(contract)
    with _tables_lock:
        if contract.fingerprint in _ready.get(engine, ()):
            return
        try:
            _create_tables(engine, schema)
        except SQLAlchemyError:  # another process created them meanwhile; a down store raises
            _create_tables(engine, schema)
        _check_columns(engine, schema)
        _ready.setdefault(engine, set()).add(contract.fingerprint)


def _create_tables(engine: Engine, schema: StoreSchema) -> None:
    """PostgreSQL partitions the predictions by day (`partitions`); a plain table made before
    that is left as it is until maintenance migrates it. Other stores keep one table."""
    if engine.dialect.name != "postgresql":
        schema.metadata.create_all(engine)
        return
    schema.metadata.create_all(engine, tables=[schema.feedback, schema.shadow])
    with engine.begin() as connection:
        partitions.lock(connection)
        if partitions.table_kind(connection) is None:
            partitions.create_partitioned(connection, schema.predictions, _today())
        elif partitions.table_kind(connection) == "p":
            today = _today()
            partitions.ensure_days(connection, today, today + _AHEAD)


_AHEAD = timedelta(days=partitions.PARTITIONS_AHEAD)


def _today() -> date:
    return datetime.now(UTC).date()


def _check_columns(engine: Engine, schema: StoreSchema) -> None:
    inspector = inspect(engine)
    for stored in (schema.predictions, schema.feedback):
        found = {column["name"] for column in inspector.get_columns(stored.name)}
        wanted = {column.name for column in stored.columns}
        if found == wanted:
            continue
        contract = schema.contract
        missing, extra = sorted(wanted - found), sorted(found - wanted)
        raise StoreSchemaError(
            f"prediction store {engine.url.render_as_string(hide_password=True)}: table "
            f"'{stored.name}' was created for another data contract than '{contract.dataset}' "
            f"(fingerprint {contract.fingerprint}): missing columns {missing}, unexpected "
            f"columns {extra}; point CHURNOPS_PREDICTION_STORE_URL at a new store or move the "
            "old one aside"
        )


def write_prediction_rows(
    engine: Engine, contract: Contract, rows: Sequence[Sequence[Any]]
) -> None:
    """Rows as tuples in `prediction_columns(contract)` order, idempotent by request id: the
    journal may ship a row twice (a crash between the store's commit and the segment's delete),
    and the store keeps it once. SQLite gets them straight through the driver's executemany:
    the serving process writes every prediction, and per-row Python work there competes with
    answering requests for the interpreter lock. Other stores go through SQLAlchemy, which
    batches them into multi-row INSERTs."""
    if not rows:
        return
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            # Rows read back from a journal segment are JSON lists; the driver takes tuples.
            connection.exec_driver_sql(schema.sqlite_insert, list(map(tuple, rows)))
        else:
            columns = schema.prediction_columns
            named = [dict(zip(columns, row, strict=True)) for row in rows]
            connection.execute(_insert_once(engine, schema.predictions), named)


def _insert_once(engine: Engine, predictions: Table) -> Any:
    """An INSERT that skips request ids already stored (PostgreSQL's ON CONFLICT DO NOTHING)."""
    if engine.dialect.name == "postgresql":
        # No conflict target: the key is request_id on a plain table, (request_id, ts) on a
        # partitioned one; a re-shipped row conflicts on either.
        return postgresql.insert(predictions).on_conflict_do_nothing()
    if engine.dialect.name == "sqlite":
        return insert(predictions).prefix_with("OR IGNORE")
    return insert(predictions)


SHADOW_COLUMNS = ("request_id", "model_version", "ts", SCORE_COLUMN, ANSWER_COLUMN)


def write_shadow_rows(engine: Engine, contract: Contract, rows: Sequence[Sequence[Any]]) -> None:
    """Shadow scores as tuples in `SHADOW_COLUMNS` order, idempotent by (request id, version)
    like `write_prediction_rows` (the journal may ship them twice)."""
    if not rows:
        return
    ensure_tables(engine, contract)
    shadow = store_schema(contract).shadow
    named = [dict(zip(SHADOW_COLUMNS, row, strict=True)) for row in rows]
    with engine.begin() as connection:
        connection.execute(_insert_once(engine, shadow), named)


def read_shadow_predictions(engine: Engine, contract: Contract) -> pd.DataFrame:
    """Every shadow score, in `SHADOW_COLUMNS`."""
    ensure_tables(engine, contract)
    shadow = store_schema(contract).shadow
    with engine.connect() as connection:
        result = connection.execute(select(*(shadow.c[name] for name in SHADOW_COLUMNS)))
        return pd.DataFrame(result.fetchall(), columns=list(SHADOW_COLUMNS))


def prune_shadow_predictions(engine: Engine, contract: Contract, before_ts: float) -> int:
    """Delete the shadow scores logged before `before_ts` (the prediction log's retention, which
    drops whole day partitions of `predictions`); the number deleted."""
    ensure_tables(engine, contract)
    shadow = store_schema(contract).shadow
    with engine.begin() as connection:
        return int(connection.execute(delete(shadow).where(shadow.c.ts < before_ts)).rowcount)


def write_predictions(engine: Engine, contract: Contract, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as dicts keyed by column name."""
    columns = prediction_columns(contract)
    write_prediction_rows(engine, contract, [tuple(row[c] for c in columns) for row in rows])


def write_feedback(engine: Engine, contract: Contract, labels: Iterable[dict[str, Any]]) -> int:
    """Labels keyed by `request_id` and/or the contract's id name, with the target's value in
    any spelling the contract accepts (stored as its canonical label)."""
    target = contract.target
    now = time.time()
    rows = []
    for label in labels:
        canonical = target.canonical(label.get(target.name))
        if canonical is None:
            raise ValueError(
                f"{target.name}: {label.get(target.name)!r} is not one of "
                f"{[*target.positive, *target.negative]}"
            )
        rows.append(
            {
                "ts": now,
                "request_id": label.get("request_id"),
                contract.id_name: label.get(contract.id_name),
                target.name: canonical,
            }
        )
    if rows:
        ensure_tables(engine, contract)
        with engine.begin() as connection:
            connection.execute(insert(store_schema(contract).feedback), rows)
    return len(rows)


KNOWN_CHUNK = 500  # ids per IN (...) query, well under every database's parameter limit


def unknown_feedback(
    engine: Engine, contract: Contract, labels: Sequence[dict[str, Any]]
) -> list[int]:
    """Indexes of `labels` that name neither a logged request id nor a logged customer: a label
    for a prediction that was never made cannot be joined, and must not reach retraining."""
    ensure_tables(engine, contract)
    predictions = store_schema(contract).predictions
    id_name = contract.id_name
    known_requests = _present(
        engine, predictions.c.request_id, [x.get("request_id") for x in labels]
    )
    known_customers = _present(engine, predictions.c[id_name], [x.get(id_name) for x in labels])
    return [
        i
        for i, label in enumerate(labels)
        if label.get("request_id") not in known_requests
        and label.get(id_name) not in known_customers
    ]


def _present(engine: Engine, column: Any, values: Sequence[Any]) -> set[Any]:
    wanted = sorted({value for value in values if value is not None})
    found: set[Any] = set()
    with engine.connect() as connection:
        for start in range(0, len(wanted), KNOWN_CHUNK):
            chunk = wanted[start : start + KNOWN_CHUNK]
            query = select(column).where(column.in_(chunk)).distinct()
            found.update(connection.execute(query).scalars())
    return found


def count_predictions(engine: Engine) -> int:
    """Rows in the predictions table (whatever the contract; the table must exist)."""
    with engine.connect() as connection:
        query = select(func.count()).select_from(table(PREDICTIONS))
        return int(connection.execute(query).scalar_one())


def read_predictions(
    engine: Engine,
    since_ts: float | None = None,
    until_ts: float | None = None,
    *,
    contract: Contract,
    labelled_only: bool = False,
) -> pd.DataFrame:
    """Predictions with since_ts < ts <= until_ts (unbounded when None), oldest first, each with
    its label if one came (the target column: the canonical label, or missing) and the served
    answer as `PREDICTED_COLUMN`. Categorical fields come back as pandas categoricals, booleans
    as 0.0/1.0 like cleaned data. `labelled_only` leaves out, in the query, predictions no
    label names (by request or customer id)."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    window = (since_ts, until_ts, labelled_only)
    with engine.connect() as connection:
        frame = _read_packed(connection, schema, *window)
        if frame is None:  # a value outside the contract: read every field as stored
            query = _window_query(schema, list(schema.predictions.columns), *window)
            frame = _fetch_frame(connection, query)
    for feature in contract.features:
        if feature.kind == "categorical" and not isinstance(
            frame[feature.name].dtype, pd.CategoricalDtype
        ):
            frame[feature.name] = frame[feature.name].astype("category")
        elif feature.kind == "boolean":
            # SQLite returns 0/1, PostgreSQL True/False; cleaned data holds 0.0/1.0.
            frame[feature.name] = frame[feature.name].astype(float)
    by_customer = _labels_by_customer(engine, schema)
    label = frame.pop(_LABEL_BY_REQUEST).astype(object)
    by_id = frame[contract.id_name].map(by_customer)
    frame[contract.target.name] = label.where(label.notna(), by_id)
    return frame


def _window_query(
    schema: StoreSchema,
    columns: list[Any],
    since_ts: float | None,
    until_ts: float | None,
    labelled_only: bool = False,
) -> Select:
    predictions, feedback = schema.predictions, schema.feedback
    # The latest label per request: a label sent twice counts once.
    latest = (
        select(func.max(feedback.c.id))
        .where(feedback.c.request_id.is_not(None))
        .group_by(feedback.c.request_id)
    )
    labels = (
        select(
            feedback.c.request_id,
            feedback.c[schema.contract.target.name].label(_LABEL_BY_REQUEST),
        )
        .where(feedback.c.id.in_(latest))
        .subquery()
    )
    query = (
        select(*(_as_read(column) for column in columns), labels.c[_LABEL_BY_REQUEST])
        .outerjoin(labels, labels.c.request_id == predictions.c.request_id)
        .order_by(predictions.c.ts)
    )
    if since_ts is not None:
        query = query.where(predictions.c.ts > since_ts)
    if until_ts is not None:
        query = query.where(predictions.c.ts <= until_ts)
    if labelled_only:
        id_column = feedback.c[schema.contract.id_name]
        customers = select(id_column).where(id_column.is_not(None))
        query = query.where(
            labels.c[_LABEL_BY_REQUEST].is_not(None)
            | predictions.c[schema.contract.id_name].in_(customers)
        )
    return query


def _as_read(column: Any) -> Any:
    """The served answer is read as `PREDICTED_COLUMN` (the target may be called `churn`)."""
    return column.label(PREDICTED_COLUMN) if column.name == ANSWER_COLUMN else column


# Reading a window costs a Python object per cell, so the closed categorical fields travel as
# one integer per row: a mixed-radix number with a digit per field, the category's index in the
# contract, or len(categories) for anything else. With plain DB-API rows this takes a
# million-row Telco window from 10 s to about 6 s, and counting categoricals is 4x quicker
# than strings. Open categories (no fixed list) are read as stored.
def _packed_categories(schema: StoreSchema) -> Any:
    terms, weight = [], 1
    for feature in schema.packed_features:
        categories = feature.categories or ()
        digits = {value: index for index, value in enumerate(categories)}
        digit = case(digits, value=schema.predictions.c[feature.name], else_=len(categories))
        terms.append(cast(digit, BigInteger) * weight)
        weight *= len(categories) + 1
    return sum(terms[1:], terms[0]).label(PACKED)


def _fetch_frame(connection: Connection, query: Select) -> pd.DataFrame:
    """The rows as plain DB-API tuples: building SQLAlchemy Row objects would cost a third of
    a large read."""
    compiled = query.compile(dialect=connection.dialect)
    params = compiled.construct_params()
    args = [params[name] for name in compiled.positiontup] if compiled.positional else params
    cursor = connection.connection.cursor()
    try:
        cursor.execute(str(compiled), args)
        names = [column[0] for column in cursor.description]
        return pd.DataFrame(cursor.fetchall(), columns=names)
    finally:
        cursor.close()


def unpack_categories(
    packed: np.ndarray, features: Sequence[Feature]
) -> dict[str, pd.Categorical] | None:
    """The packed categorical `features` from their integers; None if any value lay outside the
    contract (the caller then reads the stored strings)."""
    remaining = np.asarray(packed, dtype=np.int64)
    fields: dict[str, pd.Categorical] = {}
    for feature in features:
        categories = list(feature.categories or ())
        remaining, codes = np.divmod(remaining, len(categories) + 1)
        if (codes == len(categories)).any():
            return None
        fields[feature.name] = pd.Categorical.from_codes(codes, categories=categories)
    return fields


def _read_packed(
    connection: Connection,
    schema: StoreSchema,
    since_ts: float | None,
    until_ts: float | None,
    labelled_only: bool,
) -> pd.DataFrame | None:
    if not schema.packed_features:
        return None
    packed_names = {feature.name for feature in schema.packed_features}
    plain = [c for c in schema.predictions.columns if c.name not in packed_names]
    columns = [*plain, _packed_categories(schema)]
    query = _window_query(schema, columns, since_ts, until_ts, labelled_only)
    frame = _fetch_frame(connection, query)
    fields = unpack_categories(frame.pop(PACKED).to_numpy(dtype=np.int64), schema.packed_features)
    if fields is None:
        return None
    frame = frame.assign(**fields)
    return frame[[*schema.window_columns, _LABEL_BY_REQUEST]]


def _labels_by_customer(engine: Engine, schema: StoreSchema) -> pd.Series:
    """The latest label per customer id, for feedback that names only the customer."""
    feedback, id_name = schema.feedback, schema.contract.id_name
    target = schema.contract.target.name
    query = (
        select(feedback.c[id_name], feedback.c[target])
        .where(feedback.c[id_name].is_not(None))
        .order_by(feedback.c.id)
    )
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    return frame.groupby(id_name)[target].last()


def labelled_records(
    engine: Engine, contract: Contract, since_ts: float | None = None
) -> pd.DataFrame:
    """Production predictions after `since_ts` whose ground truth arrived, as raw contract
    records (the file columns `contract.required_columns()`; booleans 0/1, the label
    canonical). The bound keeps a retraining's read to recent partitions, not the history."""
    frame = read_predictions(engine, since_ts, contract=contract, labelled_only=True)
    frame = frame[frame[contract.target.name].notna()].copy()
    if contract.id_column is not None:
        frame[contract.id_column] = frame[contract.id_column].fillna(frame["request_id"])
    # A customer scored many times is one training example: its latest labelled prediction.
    frame = frame.drop_duplicates(subset=[contract.id_name], keep="last")
    return frame.loc[:, list(contract.required_columns())].reset_index(drop=True)
