"""`churnops contract`: draft a data contract from a file, and check a file against one.

Files are read the way training reads them (`churnops.data.sources`: CSV cells as text, UTF-8),
in chunks, so a multi-gigabyte export shows progress. pandas and the inference code are imported
when a command runs, so `churnops --help` stays quick (as in `launcher.cli`).

Exit codes: 0 done (the file matches), 1 the data has problems (or cannot be drafted),
2 the command cannot run (missing or unreadable file, invalid contract file, bad options).
"""

from __future__ import annotations

import re
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from churnops.contract import (
    Contract,
    ContractError,
    ContractFileError,
    configured_contract,
    dump_contract,
    load_contract,
)

if TYPE_CHECKING:
    import pandas as pd

    from churnops.contract.infer import InferResult

contract_app = typer.Typer(
    help="Draft a data contract from your file (infer) and check files against one (check).",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True, highlight=False, soft_wrap=True)

CHUNK_ROWS = 100_000
# Files at least this large show a progress bar while they are read.
PROGRESS_BYTES = 16 * 1024 * 1024
EXIT_PROBLEMS = 1
EXIT_USAGE = 2


def _fail(message: str, code: int = EXIT_USAGE) -> typer.Exit:
    err.print(f"[red]error:[/red] {escape(message)}")
    return typer.Exit(code)


# Reading, chunk by chunk, with progress for large files.


def read_in_chunks(path: Path) -> Iterator[pd.DataFrame]:
    """The file's rows in chunks, as training reads them (`read_customer_chunks`), with a
    progress bar for large files. Raises ContractError naming the file if it is unreadable."""
    from churnops.data.sources import read_customer_chunks
    from launcher.progress import file_progress

    size = path.stat().st_size if path.is_file() else 0
    progress = file_progress("reading", err, disable=size < PROGRESS_BYTES)
    task = progress.add_task("read", total=size, name=path.name, rows=0)
    chunks = read_customer_chunks(
        path, CHUNK_ROWS, lambda done: progress.update(task, completed=done)
    )
    rows = 0
    started = time.monotonic()
    with progress:
        for chunk in chunks:
            rows += len(chunk)
            progress.update(task, rows=rows)
            yield chunk
    if size >= PROGRESS_BYTES:
        err.print(
            f"read {rows:,} rows ({size / 1e6:,.1f} MB) in {time.monotonic() - started:.1f} s"
        )


# churnops contract infer


def _dataset_name(path: Path) -> str:
    """A valid contract `dataset` from a file name: `Churn (2024).csv` -> `Churn-2024`."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", path.stem).strip("-._")
    return name or "dataset"


def _draft_header(path: Path, rows: int, result: InferResult) -> str:
    """The comment above a draft: what it is, what to review, and why each guess was made."""
    lines = [
        f"DRAFT data contract for {path.name} ({rows:,} rows) by `churnops contract infer`.",
        "Review it before training: kinds, categories, ranges (observed values only), nullable,",
        "the target's positive value and the id column. Then check the file against it:",
        f"  churnops contract check {path} --contract THIS_FILE",
        "and point CHURNOPS_CONTRACT at it (README, 'Your own data').",
        "",
        "Why each guess was made:",
    ]
    for note in result.notes:
        lines.extend(textwrap.wrap(note, 94, initial_indent="- ", subsequent_indent="  "))
    return "\n".join(lines)


@contract_app.command()
def infer(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with a header row.")],
    out: Annotated[
        Path | None, typer.Option("--out", "-o", help="Write the draft here instead of stdout.")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="The churn label column (default: guessed by name).")
    ] = None,
    id_column: Annotated[
        str | None,
        typer.Option("--id", help="The customer key column (default: guessed by uniqueness)."),
    ] = None,
    no_id: Annotated[
        bool, typer.Option("--no-id", help="No key column: ids are derived from each row.")
    ] = False,
    dataset: Annotated[
        str | None, typer.Option(help="Dataset name in the contract (default: the file name).")
    ] = None,
    max_categories: Annotated[
        int,
        typer.Option(min=2, help="More distinct values than this: an open categorical (no list)."),
    ] = 50,
    force: Annotated[bool, typer.Option(help="Overwrite --out if it exists.")] = False,
) -> None:
    """Draft a contract from a data file (YAML on stdout, or --out FILE).

    Guesses each column's kind, categories, range and nullability, the target and its positive
    value, and the id column; a comment explains every guess. Review it before training.
    Exit 1 when no draft is possible (no target found, a constant target), 2 for file errors."""
    from churnops.contract.infer import DataProfile, InferError, draft_contract

    if id_column is not None and no_id:
        raise _fail("--id and --no-id contradict each other")
    if out is not None and out.exists() and not force:
        raise _fail(f"{out} exists (a reviewed contract?); use --force to overwrite it")
    profile = DataProfile(max_categories)
    try:
        for chunk in read_in_chunks(data):
            profile.add(chunk)
        result = draft_contract(
            profile,
            dataset=dataset or _dataset_name(data),
            target=target,
            id_column=id_column,
            no_id=no_id,
        )
    except ContractError as exc:
        raise _fail(str(exc)) from exc
    except InferError as exc:
        raise _fail(f"{data}: {exc}", EXIT_PROBLEMS) from exc
    text = dump_contract(result.contract, _draft_header(data, profile.rows, result))
    if out is None:
        sys.stdout.write(text)
        return
    try:
        out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise _fail(f"{out}: cannot be written: {exc}") from exc
    contract = result.contract
    err.print(
        f"wrote a draft contract to {escape(str(out))}: {len(contract.features)} features, "
        f"target {contract.target.name!r} (positive {contract.target.positive_label!r}), "
        + (f"id {contract.id_column!r}" if contract.has_id else "ids derived from each row")
    )
    for note in result.notes:
        err.print(f"  - {escape(note)}")
    err.print(f"review it, then: churnops contract check {escape(str(data))} --contract {out}")


# churnops contract check


def _contract(path: Path | None) -> tuple[Contract, str]:
    """The contract to check against and where it came from."""
    if path is not None:
        return load_contract(path), str(path)
    from pydantic import ValidationError

    from churnops.settings import Settings

    try:
        configured = Settings().contract
    except ValidationError as exc:
        raise ContractFileError(f"invalid CHURNOPS_* setting: {exc}") from exc
    origin = str(configured) if configured else "the shipped default (CHURNOPS_CONTRACT unset)"
    return configured_contract(configured), origin


@contract_app.command()
def check(
    data: Annotated[Path, typer.Argument(help="CSV or Parquet file with a header row.")],
    contract_file: Annotated[
        Path | None,
        typer.Option(
            "--contract",
            "-c",
            help="Contract file (default: CHURNOPS_CONTRACT, else the shipped default).",
        ),
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, help="Problems listed per column (the rest are counted).")
    ] = 5,
) -> None:
    """Check a data file against a contract: every problem, with file, line and column.

    Exit 0 when training will accept the file, 1 when it has problems (each printed), 2 when
    the file or the contract cannot be read."""
    import pandas as pd

    from churnops.data.cleaning import contract_problems

    try:
        contract, origin = _contract(contract_file)
    except ContractFileError as exc:
        raise _fail(str(exc)) from exc
    err.print(
        f"checking {escape(str(data))} against contract '{contract.dataset}' "
        f"(fingerprint {contract.fingerprint}) from {escape(origin)}"
    )
    try:
        chunks = list(read_in_chunks(data))
    except ContractError as exc:
        raise _fail(str(exc)) from exc
    frame = pd.concat(chunks, ignore_index=True) if len(chunks) > 1 else chunks[0]
    problems = contract_problems(frame, str(data), contract, limit_per_column=limit)
    for problem in problems:
        typer.echo(str(problem))
    if problems:
        err.print(f"[red]{len(problems)} problem(s)[/red]: fix the file or review the contract")
        raise typer.Exit(EXIT_PROBLEMS)
    mapping = contract.header_mapping(frame.columns)
    renamed = [f"{header!r} -> {name!r}" for header, name in mapping.items() if header != name]
    ignored = [str(column) for column in frame.columns if column not in mapping]
    if renamed:
        err.print(f"headers matched to the contract: {escape(', '.join(renamed))}")
    if ignored:
        err.print(f"columns not in the contract (ignored): {escape(', '.join(ignored))}")
    typer.echo(
        f"{data}: {len(frame):,} rows match contract '{contract.dataset}' "
        f"(fingerprint {contract.fingerprint})"
    )
