"""Dagster metadata helpers: plots as inline markdown images, frames as markdown tables."""

import base64
import io

import dagster as dg
import pandas as pd
from matplotlib.figure import Figure


def figure_markdown(figure: Figure, title: str) -> dg.MetadataValue:
    """Render a figure to PNG and embed it, so the plot shows on the materialization page."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    return dg.MetadataValue.md(f"![{title}](data:image/png;base64,{encoded})")


def frame_preview(frame: pd.DataFrame, rows: int = 5) -> dg.MetadataValue:
    return dg.MetadataValue.md(frame.head(rows).to_markdown(index=False))
