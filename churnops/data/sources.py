"""Read a user's customer file (CSV or Parquet) with errors naming the file; matching its
columns to the contract is cleaning's job."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from churnops.contract import ContractError

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")
# Every cell as text, no `NA` guessing (the contract's `missing_values` decide), UTF-8 (BOM ok).
CSV_OPTIONS = {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}


def read_customer_file(path: str | Path) -> pd.DataFrame:
    """Load the file as text columns (CSV) or as stored (Parquet); typing happens in cleaning."""
    file = _readable(Path(path))
    try:
        if file.suffix.lower() == ".csv":
            return pd.read_csv(file, **CSV_OPTIONS)
        return pd.read_parquet(file)
    except UnicodeDecodeError as exc:
        raise ContractError(f"{file}: not UTF-8 text (byte {exc.start}): {exc.reason}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise ContractError(f"{file}: cannot be parsed: {exc}") from exc


def read_customer_chunks(
    path: str | Path, chunk_rows: int, on_bytes: Callable[[int], None] | None = None
) -> Iterator[pd.DataFrame]:
    """The file's rows `chunk_rows` at a time, read as `read_customer_file` reads them, so a
    multi-gigabyte export never sits in memory whole. `on_bytes(n)` reports progress: bytes
    read so far (for Parquet, estimated from the rows read). Always yields at least one chunk,
    empty with the file's columns when it has a header but no rows. Errors name the file."""
    file = _readable(Path(path))
    report = on_bytes or (lambda _done: None)
    try:
        if file.suffix.lower() == ".csv":
            yield from _csv_chunks(file, chunk_rows, report)
        else:
            yield from _parquet_chunks(file, chunk_rows, report)
    except UnicodeDecodeError as exc:
        raise ContractError(
            f"{file}: not UTF-8 text (byte {exc.start}): {exc.reason}; save it as UTF-8"
        ) from exc
    except pd.errors.EmptyDataError as exc:
        raise ContractError(f"{file}: no header row (the file is blank)") from exc
    except (pd.errors.ParserError, OSError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ContractError(f"{file}: cannot be parsed: {detail}") from exc


def _readable(file: Path) -> Path:
    if not file.exists():
        raise ContractError(f"{file}: no such file")
    if not file.is_file():
        raise ContractError(f"{file}: not a file")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ContractError(f"{file}: unsupported file type {suffix!r}; use .csv or .parquet")
    if file.stat().st_size == 0:
        raise ContractError(f"{file}: file is empty")
    return file


def _csv_chunks(
    file: Path, chunk_rows: int, on_bytes: Callable[[int], None]
) -> Iterator[pd.DataFrame]:
    with (
        file.open("rb") as handle,
        pd.read_csv(handle, chunksize=chunk_rows, **CSV_OPTIONS) as reader,
    ):
        for chunk in reader:
            on_bytes(handle.tell())
            yield chunk


def _parquet_chunks(
    file: Path, chunk_rows: int, on_bytes: Callable[[int], None]
) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(file)
    size = file.stat().st_size
    total = parquet.metadata.num_rows
    if total == 0:
        on_bytes(size)
        yield parquet.schema_arrow.empty_table().to_pandas()
        return
    done = 0
    for batch in parquet.iter_batches(batch_size=chunk_rows):
        done += batch.num_rows
        on_bytes(size * done // total)
        yield batch.to_pandas()
