"""A PostgreSQL query's rows as Arrow record batches through `COPY ... TO STDOUT`, for exports
too big to pass through Python row objects.

The server writes CSV into a pipe from a thread (psycopg2's `copy_expert`); Arrow's streaming
CSV reader parses the other end block by block, with the target schema, off the GIL. The pipe
holds one buffer, so memory stays flat: when the consumer is slow the server waits.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.csv as pacsv
from sqlalchemy import Engine
from sqlalchemy.sql import Select

BLOCK_BYTES = 16 * 1024 * 1024  # CSV parsed per batch (about 50k rows of a telco prediction)
PIPE_BUFFER = 1024 * 1024


def _csv_options(schema: pa.Schema) -> dict[str, object]:
    """How PostgreSQL writes CSV: no header, booleans as t/f, NULL unquoted and empty, an empty
    string quoted; values may hold newlines inside quotes."""
    return {
        "read_options": pacsv.ReadOptions(column_names=schema.names, block_size=BLOCK_BYTES),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=schema,
            true_values=["t"],
            false_values=["f"],
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
        ),
    }


def copy_batches(engine: Engine, query: Select, schema: pa.Schema) -> Iterator[pa.RecordBatch]:
    """`query`'s rows (its columns in `schema`'s order) as batches of `schema`."""
    compiled = query.compile(dialect=engine.dialect)
    connection = engine.raw_connection()
    cursor = connection.cursor()
    statement = cursor.mogrify(str(compiled), compiled.params).decode()
    copy = f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)"
    read_fd, write_fd = os.pipe()
    failures: list[BaseException] = []

    def produce() -> None:
        try:
            with open(write_fd, "wb", buffering=PIPE_BUFFER) as sink:
                cursor.copy_expert(copy, sink)
        except BaseException as error:  # handed to the consuming thread
            failures.append(error)

    producer = threading.Thread(target=produce, name="copy-to-stdout", daemon=True)
    producer.start()
    try:
        with open(read_fd, "rb") as source:
            if source.peek(1):  # Arrow refuses an empty CSV stream; no rows, no batches
                reader = pacsv.open_csv(source, **_csv_options(schema))
                with reader:  # its read-ahead stops before the pipe closes
                    yield from reader
    except BaseException as error:
        # Closing the read end broke the pipe: the producer stops; its connection is mid-COPY.
        producer.join()
        connection.invalidate()
        if failures and not isinstance(failures[0], BrokenPipeError):
            raise failures[0] from error
        raise
    producer.join()
    if failures:
        connection.invalidate()
        raise failures[0]
    connection.close()
