"""The promotion gate: a challenger replaces the champion only when it is clearly better."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reason: str
    challenger_auc: float
    champion_auc: float | None


def decide_promotion(
    challenger_auc: float,
    champion_auc: float | None,
    *,
    min_auc: float,
    margin: float,
) -> GateDecision:
    """Both AUCs must come from the same holdout; the first model only has to clear `min_auc`."""

    def decision(promote: bool, reason: str) -> GateDecision:
        return GateDecision(promote, reason, challenger_auc, champion_auc)

    if not math.isfinite(challenger_auc):
        return decision(False, f"challenger AUC is not a number ({challenger_auc})")
    if challenger_auc < min_auc:
        return decision(False, f"challenger AUC {challenger_auc:.4f} is below minimum {min_auc}")
    if champion_auc is None:
        return decision(True, f"no champion yet; challenger AUC {challenger_auc:.4f} >= {min_auc}")
    needed = champion_auc + margin
    if challenger_auc >= needed:
        return decision(
            True,
            f"challenger AUC {challenger_auc:.4f} beats champion {champion_auc:.4f} by >= {margin}",
        )
    return decision(
        False,
        f"challenger AUC {challenger_auc:.4f} does not beat champion {champion_auc:.4f} "
        f"by the margin {margin} (needs {needed:.4f})",
    )
