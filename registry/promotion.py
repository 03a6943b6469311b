"""The promotion gate as one unit: re-score the champion on the challenger's holdout, decide,
record the decision on the challenger's version and move `@champion` when it wins."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnops.model import scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.gate import GateDecision, decide_promotion
from registry.history import AliasEvent
from registry.interface import ModelRegistry


@dataclass(frozen=True)
class PromotionOutcome:
    decision: GateDecision
    challenger_version: str
    previous_champion: str | None  # who held `@champion` when the gate ran
    event: AliasEvent | None  # the alias move, when promoted

    @property
    def promoted(self) -> bool:
        return self.decision.promote

    @property
    def champion_version(self) -> str | None:
        """Who holds `@champion` after the gate."""
        return self.challenger_version if self.promoted else self.previous_champion


def holdout_auc(registry: ModelRegistry, version: str, holdout: pd.DataFrame) -> float:
    model = registry.load_model(registry.model_uri(version))
    scores = scoring.churn_probability(model, holdout)
    return evaluate_scores(scoring.labels(holdout), scores).metrics["roc_auc"]


def gate_challenger(
    registry: ModelRegistry,
    challenger_version: str,
    challenger_auc: float,
    holdout: pd.DataFrame,
    *,
    min_auc: float,
    margin: float,
) -> PromotionOutcome:
    """Both AUCs come from `holdout`: the champion is re-scored on it, never compared by the
    number it was promoted with. The decision is tagged on the challenger's version."""
    champion = registry.champion()
    previous = champion.version if champion else None
    champion_auc = None
    if previous is not None and previous != challenger_version:
        champion_auc = holdout_auc(registry, previous, holdout)
    decision = decide_promotion(challenger_auc, champion_auc, min_auc=min_auc, margin=margin)
    registry.tag_version(
        challenger_version,
        {
            "gate.decision": "promoted" if decision.promote else "rejected",
            "gate.reason": decision.reason,
            "gate.champion_version": previous or "none",
        },
    )
    event = registry.promote(challenger_version, decision.reason) if decision.promote else None
    return PromotionOutcome(decision, challenger_version, previous, event)
