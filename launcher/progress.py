"""One progress bar for commands that stream a customer file: bytes read, rows, time."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn


def file_progress(verb: str, console: Console, *, disable: bool = False) -> Progress:
    """`{verb} <file name>`, a bar over the file's bytes and a row count; tasks carry the
    fields `name` and `rows`."""
    return Progress(
        TextColumn(f"{verb} {{task.fields[name]}}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[rows]:,} rows"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=disable,
    )
