"""One UTC day of the prediction log, joined with its labels, as a Parquet file: the history
retraining and analysis read once the store's own partitions have been dropped.

The rows stream in bounded batches into one Parquet writer, so what is held does not grow with
the day (PostgreSQL: `COPY` parsed by Arrow, see `copy_stream`; SQLite: a cursor's chunks); the
file is written under a temporary name and moved into place, so a reader never sees half a day.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import Engine
from sqlalchemy.sql import Select

from churnops.contract import Contract
from churnops.data.output import output_filesystem
from churnops.monitoring.copy_stream import copy_batches
from churnops.monitoring.partitions import DAY_SECONDS, day_start
from churnops.monitoring.prediction_store import (
    ANSWER_COLUMN,
    PREDICTED_COLUMN,
    SCORE_COLUMN,
    ensure_tables,
    store_schema,
)
from churnops.monitoring.window_counts import LABEL, labelled_select

CHUNK_ROWS = 50_000  # SQLite: rows in memory at once (Python objects until Arrow takes them)


def day_location(output: str, day: dt.date) -> str:
    """One file per day: exporting a day again replaces its file."""
    return f"{output.rstrip('/')}/date={day.isoformat()}/predictions.parquet"


def _arrow_type(kind: str) -> pa.DataType:
    return {
        "categorical": pa.string(),
        "boolean": pa.bool_(),
        "integer": pa.int64(),
    }.get(kind, pa.float64())


def export_schema(contract: Contract) -> pa.Schema:
    """The file's columns: the logged prediction (answer as `predicted_churn`) and the label
    under the target's name (missing until it arrives)."""
    fields = [
        pa.field("request_id", pa.string()),
        pa.field("ts", pa.float64()),
        pa.field("model_version", pa.string()),
        pa.field(contract.id_name, pa.string()),
        *(pa.field(f.name, _arrow_type(f.kind)) for f in contract.features),
        pa.field(SCORE_COLUMN, pa.float64()),
        pa.field(PREDICTED_COLUMN, pa.string()),
        pa.field(contract.target.name, pa.string()),
    ]
    return pa.schema(fields)


def _typed(frame: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """Nullable pandas types, so SQLite's 0/1 booleans and missing integers convert."""
    for feature in contract.features:
        if feature.kind == "boolean":
            frame[feature.name] = frame[feature.name].astype("boolean")
        elif feature.kind == "integer":
            frame[feature.name] = frame[feature.name].astype("Int64")
    return frame


def _encoding(contract: Contract) -> dict[str, list[str]]:
    """Dictionaries for the columns with few values; no statistics on the unique ids (their
    min/max prune nothing and cost a quarter of the write)."""
    unique = ["request_id", contract.id_name]
    continuous = ["ts", SCORE_COLUMN]
    continuous += [f.name for f in contract.features if f.kind == "numeric"]
    names = export_schema(contract).names
    return {
        "use_dictionary": [name for name in names if name not in (*unique, *continuous)],
        "write_statistics": [name for name in names if name not in unique],
    }


def export_day(engine: Engine, contract: Contract, day: dt.date, output: str) -> int:
    """Write `day`'s predictions with their labels to `day_location(output, day)`; the rows."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    predictions = schema.predictions
    columns = [
        column.label(PREDICTED_COLUMN) if column.name == ANSWER_COLUMN else column
        for column in predictions.columns
    ]
    start = day_start(day)
    query = labelled_select(schema, columns).where(
        predictions.c.ts >= start, predictions.c.ts < start + DAY_SECONDS
    )
    if engine.dialect.name != "postgresql":
        # PostgreSQL's rows come in storage order (about the order they were logged): sorting
        # a 10M-row day would spill to disk and cost more than the rest of the export.
        query = query.order_by(predictions.c.ts)
    arrow_schema = export_schema(contract)
    filesystem, path = output_filesystem(day_location(output, day))
    partial = f"{path}.partial"
    rows = 0
    with (
        filesystem.open_output_stream(partial) as sink,
        pq.ParquetWriter(sink, arrow_schema, **_encoding(contract)) as writer,
    ):
        for batch in _batches(engine, query, contract, arrow_schema):
            writer.write_batch(batch)
            rows += batch.num_rows
    filesystem.move(partial, path)
    return rows


def _batches(
    engine: Engine, query: Select, contract: Contract, arrow_schema: pa.Schema
) -> Iterator[pa.RecordBatch]:
    """PostgreSQL: `COPY` parsed by Arrow (no Python object per cell); elsewhere a server-side
    cursor's chunks through pandas."""
    if engine.dialect.name == "postgresql":
        yield from copy_batches(engine, query, arrow_schema)
        return
    with engine.connect().execution_options(stream_results=True) as connection:
        result = connection.execute(query)
        while chunk := result.fetchmany(CHUNK_ROWS):
            frame = pd.DataFrame(chunk, columns=[*arrow_schema.names[:-1], LABEL])
            frame = _typed(frame.rename(columns={LABEL: contract.target.name}), contract)
            table = pa.Table.from_pandas(frame, arrow_schema, preserve_index=False)
            yield from table.to_batches()
