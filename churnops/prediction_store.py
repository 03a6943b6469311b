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
from typing import Any

import pandas as pd
from sqlalchemy import (
    Column,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    event,
    func,
    insert,
    select,
)
from sqlalchemy.exc import SQLAlchemyError

from churnops.contract import FEATURES, ID_COLUMN, RAW_COLUMNS, TARGET_COLUMN

_COLUMN_TYPES = {"categorical": String(32), "integer": Integer, "float": Float}

metadata = MetaData()

predictions = Table(
    "predictions",
    metadata,
    Column("request_id", String(64), primary_key=True),
    Column("ts", Float, nullable=False, index=True),
    Column("model_version", String(64), nullable=False, index=True),
    Column(ID_COLUMN, String(64), index=True),
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
        from pathlib import Path

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


def write_predictions(engine: Engine, rows: Sequence[dict[str, Any]]) -> None:
    if rows:
        ensure_tables(engine)
        with engine.begin() as connection:
            connection.execute(insert(predictions), list(rows))


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
    its label if one came."""
    labels = (
        select(feedback.c.request_id, feedback.c[TARGET_COLUMN].label("label_by_request"))
        .where(feedback.c.request_id.is_not(None))
        .subquery()
    )
    query = (
        select(predictions, labels.c.label_by_request)
        .outerjoin(labels, labels.c.request_id == predictions.c.request_id)
        .order_by(predictions.c.ts)
    )
    if since_ts is not None:
        query = query.where(predictions.c.ts > since_ts)
    if until_ts is not None:
        query = query.where(predictions.c.ts <= until_ts)
    with engine.connect() as connection:
        frame = pd.read_sql(query, connection)
    by_customer = _labels_by_customer(engine)
    frame[TARGET_COLUMN] = frame.pop("label_by_request").fillna(frame[ID_COLUMN].map(by_customer))
    return frame


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
