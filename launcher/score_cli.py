"""`churnops score`: the retention list from a shell, without the Dagster stack (only the MLflow
server must be up, to load `@champion`).

Heavy modules are imported when the command runs, so `churnops --help` stays instant.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from churnops.settings import Settings

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)
SHOWN_ROWS = 10


def score(
    data: Annotated[Path, typer.Option(help="Customers to score (CSV or Parquet).")],
    out_path: Annotated[
        str, typer.Option("--out", help="Parquet file to write (a path or an s3://... URL).")
    ],
    explain: Annotated[bool, typer.Option(help="Add each customer's top 3 reason codes.")] = False,
    top: Annotated[
        int | None,
        typer.Option(min=1, help="Write only the N highest-risk customers, in rank order."),
    ] = None,
    version: Annotated[
        str | None, typer.Option(help="Score with this registered version, not @champion.")
    ] = None,
) -> None:
    """Score a customer file with @champion: probability, decision at the served threshold,
    rank (1 = highest risk) and, with --explain, reasons. A bad row stops the run naming the
    file, line and column; nothing partial is written."""
    from churnops.contract import ContractError, ContractFileError, configured_contract
    from launcher.credentials import use_stored_login
    from registry.interface import RegistryError
    from registry.mlflow_registry import MlflowModelRegistry
    from registry.scoring import scoring_model

    # Our own bar shows progress; MLflow's per-file download bars would only bury the messages.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    settings = Settings()
    try:
        contract = configured_contract(settings.contract)
    except ContractFileError as exc:
        _fail(str(exc))
    use_stored_login(settings.state_dir)
    registry = MlflowModelRegistry(settings.tracking_uri, settings.model_name, settings.experiment)
    try:
        model = scoring_model(registry, contract, version=version, explain=explain)
    except RegistryError as exc:
        _fail(str(exc))
    except Exception as exc:  # MLflow's client raises several types when the server is away
        _fail(
            f"cannot load the model from the MLflow server at {settings.tracking_uri} "
            f"({type(exc).__name__}: {exc}); start it (`churnops up`) or set "
            "CHURNOPS_MLFLOW_TRACKING_URI"
        )
    err.print(
        f"scoring {data} with {settings.model_name} v{model.version} "
        f"(threshold {model.threshold:.4f}{', with reasons' if explain else ''})",
        markup=False,
    )
    try:
        summary = _score_with_progress(data, out_path, model, contract, explain, top)
    except ContractError as exc:
        _fail(str(exc))
    out.print(
        f"wrote {summary.output}: {summary.rows:,} customers scored "
        f"({summary.predicted_churners:,} at or above the threshold) in "
        f"{summary.seconds:.1f} s ({summary.rows_per_second:,.0f} rows/s)",
        markup=False,
    )
    out.print(_top_table(summary))


def _score_with_progress(data: Path, out_path: str, model, contract, explain, top):
    from churnops.model.batch import score_file
    from launcher.progress import file_progress

    size = data.stat().st_size if data.is_file() else 0
    progress = file_progress("scoring", err)
    task = progress.add_task("score", total=size or None, name=data.name, rows=0)

    def advance(rows: int, done: int) -> None:
        progress.update(task, completed=done, rows=rows)

    with progress:
        return score_file(
            data, out_path, model, contract, explain=explain, top=top, on_progress=advance
        )


def _top_table(summary) -> Table:
    from churnops.model.batch import readable_columns

    table = Table(title=f"highest churn risk (of {summary.rows:,})")
    frame = summary.top.head(SHOWN_ROWS)
    columns = readable_columns(frame)
    for column in columns:
        table.add_column(column)
    for row in frame.loc[:, columns].itertuples(index=False):
        table.add_row(*(_cell(value) for value in row))
    return table


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def _fail(message: str) -> None:
    err.print(Text("error: ", style="red") + Text(message))
    raise typer.Exit(2)
