"""The prediction store: every served prediction and every late ground-truth label.

Addressed by a SQLAlchemy URL (SQLite in WAL mode by default, Postgres at scale). The Bento
service writes to it; the monitoring sensor, the drift report and retraining read from it. Its
columns come from the data contract, so a logged prediction is a contract record.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
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
    event,
    func,
    insert,
    select,
)
from sqlalchemy.dialects import sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.sql import Select

from churnops.contract import FEATURES, ID_COLUMN, RAW_COLUMNS, TARGET_COLUMN

_COLUMN_TYPES = {"categorical": String(32), "integer": Integer, "float": Float}

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("ts", Float, nullable=False, index=True),
    # No index on model_version or the customer id: no query filters on them, and every index
    # is paid on each logged prediction (benchmarks/serving.py, logging on vs off).
    Column("model_version", String(64), nullable=False),
    Column(ID_COLUMN, String(64)),
    *(Column(spec.name, _COLUMN_TYPES[spec.kind], nullable=spec.nullable) for spec in FEATURES),
    Column("churn_probability", Float, nullable=False),
    Column("churn", String(3), nullable=False),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ts", Float, nullable=False),
    Column("request_id", String(64), index=True),
    Column(ID_COLUMN, String(64), index=True),
    Column(TARGET_COLUMN, String(3), nullable=False),
)


def connect(url: str, create_tables: bool = True) -> Engine:
    """Engine with the tables created; SQLite gets WAL and a busy timeout for many writers.

    With `create_tables=False` nothing touches the store yet (it may be down when a server
    starts); the first write creates the tables."""
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
    if create_tables:
        ensure_tables(engine)
    return engine


_with_tables: weakref.WeakSet[Engine] = weakref.WeakSet()
_tables_lock = threading.Lock()


def ensure_tables(engine: Engine) -> None:
    """Create missing tables once per engine (the request threads and the log writer race)."""
    if engine in _with_tables:
        return
    with _tables_lock:
        if engine in _with_tables:
            return
        try:
            metadata.create_all(engine)
        except SQLAlchemyError:  # another process created them meanwhile; a down store raises
            metadata.create_all(engine)
        _with_tables.add(engine)


PREDICTION_COLUMNS: tuple[str, ...] = tuple(column.name for column in predictions.columns)
# "INSERT INTO predictions (request_id, ...) VALUES (?, ...)": positional, in column order.
_SQLITE_INSERT = str(insert(predictions).compile(dialect=sqlite.dialect()))


def write_prediction_rows(engine: Engine, rows: Sequence[Sequence[Any]]) -> None:
    """Rows as tuples in `PREDICTION_COLUMNS` order. SQLite gets them straight through the
    driver's executemany: the serving process writes every prediction, and per-row Python work
    there competes with answering requests for the interpreter lock. Other stores go through
    SQLAlchemy, which batches them into multi-row INSERTs."""
    if not rows:
        return
    ensure_tables(engine)
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            connection.exec_driver_sql(_SQLITE_INSERT, list(rows))
        else:
            named = [dict(zip(PREDICTION_COLUMNS, row, strict=True)) for row in rows]
            connection.execute(insert(predictions), named)


def write_predictions(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    """Rows as dicts keyed by column name."""
    write_prediction_rows(engine, [tuple(row[c] for c in PREDICTION_COLUMNS) for row in rows])


def write_feedback(engine: Engine, labels: Iterable[dict[str, Any]]) -> int:
    now = time.time()
    rows = [{"ts": now, "request_id": None, ID_COLUMN: None, **label} for label in labels]
    if rows:
        ensure_tables(engine)
        with engine.begin() as connection:
            connection.execute(insert(feedback), rows)
    return len(rows)


def count_predictions(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(predictions)).scalar_one())


def read_predictions(
    engine: Engine, since_ts: float | None = None, until_ts: float | None = None
) -> pd.DataFrame:
    """Predictions with since_ts < ts <= until_ts (unbounded when None), oldest first, each with
    its label if one came. Categorical fields come back as pandas categoricals."""
    with engine.connect() as connection:
        frame = _read_packed(connection, since_ts, until_ts)
        if frame is None:  # a value outside the contract: read every field as stored
            frame = pd.read_sql(_window_query([predictions], since_ts, until_ts), connection)
            for spec in CATEGORICAL_SPECS:
                frame[spec.name] = frame[spec.name].astype("category")
    by_customer = _labels_by_customer(engine)
    frame[TARGET_COLUMN] = frame.pop("label_by_request").fillna(frame[ID_COLUMN].map(by_customer))
    return frame


def _window_query(columns: list[Any], since_ts: float | None, until_ts: float | None) -> Select:
    labels = (
        select(feedback.c.request_id, feedback.c[TARGET_COLUMN].label("label_by_request"))
        .where(feedback.c.request_id.is_not(None))
        .subquery()
    )
    query = (
        select(*columns, labels.c.label_by_request)
        .outerjoin(labels, labels.c.request_id == predictions.c.request_id)
        .order_by(predictions.c.ts)
    )
    if since_ts is not None:
        query = query.where(predictions.c.ts > since_ts)
    if until_ts is not None:
        query = query.where(predictions.c.ts <= until_ts)
    return query


# Reading a window costs a Python object per cell, so the 16 categorical fields travel as one
# integer per row: a mixed-radix number with a digit per field, the category's index in the
# contract, or len(categories) for anything else. With plain DB-API rows this takes a
# million-row window from 10 s to about 6 s, and counting categoricals is 4x quicker than strings.
CATEGORICAL_SPECS = tuple(spec for spec in FEATURES if spec.kind == "categorical")
PACKED = "packed_categories"
_PLAIN_COLUMNS = [
    c for c in predictions.columns if c.name not in {s.name for s in CATEGORICAL_SPECS}
]


def _packed_categories() -> Any:
    terms, weight = [], 1
    for spec in CATEGORICAL_SPECS:
        digits = {value: index for index, value in enumerate(spec.categories)}
        digit = case(digits, value=predictions.c[spec.name], else_=len(spec.categories))
        terms.append(cast(digit, BigInteger) * weight)
        weight *= len(spec.categories) + 1
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


def unpack_categories(packed: np.ndarray) -> dict[str, pd.Categorical] | None:
    """The categorical fields from their packed integers; None if any value lay outside the
    contract (the caller then reads the stored strings)."""
    remaining = np.asarray(packed, dtype=np.int64)
    fields: dict[str, pd.Categorical] = {}
    for spec in CATEGORICAL_SPECS:
        remaining, codes = np.divmod(remaining, len(spec.categories) + 1)
        if (codes == len(spec.categories)).any():
            return None
        fields[spec.name] = pd.Categorical.from_codes(codes, categories=list(spec.categories))
    return fields


def _read_packed(
    connection: Connection, since_ts: float | None, until_ts: float | None
) -> pd.DataFrame | None:
    query = _window_query([*_PLAIN_COLUMNS, _packed_categories()], since_ts, until_ts)
    frame = _fetch_frame(connection, query)
    fields = unpack_categories(frame.pop(PACKED).to_numpy(dtype=np.int64))
    if fields is None:
        return None
    frame = frame.assign(**fields)
    return frame[[*(c.name for c in predictions.columns), "label_by_request"]]


def _labels_by_customer(engine: Engine) -> pd.Series:
    """The latest label per customer id, for feedback that names only the customer."""
    query = (
        select(feedback.c[ID_COLUMN], feedback.c[TARGET_COLUMN])
        .where(feedback.c[ID_COLUMN].is_not(None))
        .order_by(feedback.c.id)
    )
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    return frame.groupby(ID_COLUMN)[TARGET_COLUMN].last()


def labelled_records(engine: Engine) -> pd.DataFrame:
    """Production predictions whose ground truth arrived, as raw contract records."""
    frame = read_predictions(engine)
    frame = frame[frame[TARGET_COLUMN].notna()].copy()
    frame[ID_COLUMN] = frame[ID_COLUMN].fillna(frame["request_id"])
    return frame.loc[:, list(RAW_COLUMNS)].reset_index(drop=True)
