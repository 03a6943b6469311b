"""Dagster asset conventions and metadata helpers (plots as inline images, frames as tables)."""

import base64
import io

import dagster as dg
import pandas as pd
from matplotlib.figure import Figure

OWNERS = ["team:ml-platform"]
CODE_VERSION = "1"


def platform_asset(group: str, *kinds: str):
    """`dg.asset` with the platform's conventions: a group per service, kinds, owner, version."""
    return dg.asset(group_name=group, kinds=set(kinds), owners=OWNERS, code_version=CODE_VERSION)


def figure_markdown(figure: Figure, title: str) -> dg.MetadataValue:
    """Render a figure to PNG and embed it, so the plot shows on the materialization page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def frame_preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))
