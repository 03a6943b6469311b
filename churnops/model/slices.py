"""Customer slices the promotion gate judges separately, declared as text in the data contract's
`slices` (or `CHURNOPS_GATE_SLICES`): `plan` (one slice per value of a feature) or
`age:18,30,50` (numeric bands). No scipy here: settings validate slice declarations, and
serving loads settings."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from churnops.contract import Contract

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class SliceSpec:
    """`column` alone: one slice per value; `column:e0,e1,...`: numeric bands split at the
    edges (`< e0`, `[e0, e1)`, ..., `>= ek`)."""

    column: str
    edges: tuple[float, ...] = ()

    @classmethod
    def parse(cls, text: str) -> SliceSpec:
        column, colon, edges = text.partition(":")
        column = column.strip()
        if not column:
            raise ValueError(f"slice {text!r} names no column")
        if not colon:
            return cls(column)
        try:
            values = tuple(float(edge) for edge in edges.split(","))
        except ValueError:
            raise ValueError(f"slice {text!r}: edges must be numbers, e.g. age:18,30,50") from None
        if list(values) != sorted(set(values)):
            raise ValueError(f"slice {text!r}: edges must be strictly increasing")
        return cls(column, values)

    def text(self) -> str:
        """The declaration `parse` reads back."""
        if not self.edges:
            return self.column
        return f"{self.column}:" + ",".join(f"{edge:g}" for edge in self.edges)

    def groups(self, frame: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
        """(slice name, row mask) pairs in reading order: categories sorted, bands by edge,
        missing values last. Names read like `plan = gold` or `age in [30, 50)`."""
        if self.column not in frame.columns:
            raise ValueError(f"slice column {self.column!r} is not in the holdout")
        values = frame[self.column]
        missing = values.isna().to_numpy()
        if self.edges:
            import pandas as pd

            band = np.digitize(pd.to_numeric(values, errors="coerce").to_numpy(), self.edges)
            named = [(name, (band == i) & ~missing) for i, name in enumerate(self._band_names())]
        else:
            text = values.astype(str).to_numpy()
            categories = sorted(set(text[~missing]))
            named = [(f"{self.column} = {v}", (text == v) & ~missing) for v in categories]
        named.append((f"{self.column} missing", missing))
        return [(name, mask) for name, mask in named if mask.any()]

    def _band_names(self) -> list[str]:
        edges = [f"{edge:g}" for edge in self.edges]
        inner = [f"{self.column} in [{lo}, {hi})" for lo, hi in itertools.pairwise(edges)]
        return [f"{self.column} < {edges[0]}", *inner, f"{self.column} >= {edges[-1]}"]


def slice_specs(contract: Contract, declared: Sequence[str] | None = None) -> tuple[SliceSpec, ...]:
    """The slices the gate judges for models of `contract`: `declared` (settings) when given,
    else the contract's own; each must name one of its features."""
    specs = tuple(
        SliceSpec.parse(text) for text in (contract.slices if declared is None else declared)
    )
    for spec in specs:
        if spec.column not in contract.by_name:
            raise ValueError(
                f"slice {spec.text()!r}: {spec.column!r} is not a feature of contract "
                f"'{contract.dataset}' ({', '.join(contract.feature_names)})"
            )
    return specs
