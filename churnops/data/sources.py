"""Read a user's customer file (CSV or Parquet) with errors naming the file; matching its
columns to the contract is cleaning's job."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from churnops.contract import ContractError

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".pq")


def read_customer_file(path: str | Path) -> pd.DataFrame:
    """Load the file as text columns (CSV) or as stored (Parquet); typing happens in cleaning."""
    file = Path(path)
    if not file.is_file():
        raise ContractError(f"{file}: no such file")
    suffix = file.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise ContractError(f"{file}: unsupported file type {suffix!r}; use .csv or .parquet")
    if file.stat().st_size == 0:
        raise ContractError(f"{file}: file is empty")
    try:
        if suffix == ".csv":
            return pd.read_csv(file, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        return pd.read_parquet(file)
    except UnicodeDecodeError as exc:
        raise ContractError(f"{file}: not UTF-8 text (byte {exc.start}): {exc.reason}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError, OSError, ValueError) as exc:
        raise ContractError(f"{file}: cannot be parsed: {exc}") from exc
