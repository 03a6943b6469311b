"""The promotion gate as one unit: score the challenger and the champion on the challenger's
holdout, judge them, record the decision and its report, and move `@champion` when it wins."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnops.model import scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.gate import GateReport, GateRules, judge_challenger
from registry.history import AliasEvent
from registry.interface import ModelRegistry, RegistryError

GATE_FOLDER = "gate"
REPORT_JSON = f"{GATE_FOLDER}/report.json"
REPORT_MARKDOWN = f"{GATE_FOLDER}/report.md"


@dataclass(frozen=True)
class GateVerdict:
    """The gate's judgement, before anything is recorded or moved."""

    report: GateReport
    challenger_version: str
    previous_champion: str | None  # who held `@champion` when the gate ran


@dataclass(frozen=True)
class PromotionOutcome:
    report: GateReport
    challenger_version: str
    previous_champion: str | None  # who held `@champion` when the gate ran
    event: AliasEvent | None  # the alias move, when promoted

    @property
    def promoted(self) -> bool:
        return self.report.promote

    @property
    def champion_version(self) -> str | None:
        """Who holds `@champion` after the gate."""
        return self.challenger_version if self.promoted else self.previous_champion


def holdout_scores(registry: ModelRegistry, version: str, holdout: pd.DataFrame) -> np.ndarray:
    """Churn probabilities of a registered version, loaded as serving would load it."""
    model = registry.load_model(registry.model_uri(version))
    return scoring.churn_probability(model, holdout)


def holdout_auc(registry: ModelRegistry, version: str, holdout: pd.DataFrame) -> float:
    scores = holdout_scores(registry, version, holdout)
    return evaluate_scores(scoring.labels(holdout), scores).metrics["roc_auc"]


def gate_tags(report: GateReport, previous_champion: str | None) -> dict[str, str]:
    """Short version tags: what `churnops status` and the MLflow UI show at a glance."""
    return {
        "gate.decision": report.decision,
        "gate.summary": report.summary,
        "gate.reason": report.reason,
        "gate.p_value": report.p_value_text(),
        "gate.auc_diff_ci": report.diff_ci_text(),
        "gate.slices": report.slices_text(),
        "gate.champion_version": previous_champion or "none",
        "gate.report": REPORT_JSON,
    }


def judge_versions(
    registry: ModelRegistry, challenger_version: str, holdout: pd.DataFrame, rules: GateRules
) -> GateVerdict:
    """Both models are loaded from the registry and scored on `holdout`: the champion is never
    compared by the number it was promoted with."""
    champion = registry.champion()
    previous = champion.version if champion else None
    champion_scores = None
    if previous is not None and previous != challenger_version:
        champion_scores = holdout_scores(registry, previous, holdout)
    challenger_scores = holdout_scores(registry, challenger_version, holdout)
    report = judge_challenger(holdout, challenger_scores, champion_scores, rules)
    return GateVerdict(report, challenger_version, previous)


def record_verdict(registry: ModelRegistry, verdict: GateVerdict) -> PromotionOutcome:
    """The report goes to the challenger's run (`gate/report.json`, `gate/report.md`), the
    decision to its version's tags; then `@champion` moves if the challenger won."""
    report, version = verdict.report, verdict.challenger_version
    run_id = registry.version(version).run_id
    if run_id:
        registry.log_text(run_id, report.to_json(), REPORT_JSON)
        registry.log_text(run_id, report.to_markdown(), REPORT_MARKDOWN)
    registry.tag_version(version, gate_tags(report, verdict.previous_champion))
    event = registry.promote(version, report.reason) if report.promote else None
    return PromotionOutcome(report, version, verdict.previous_champion, event)


def gate_challenger(
    registry: ModelRegistry, challenger_version: str, holdout: pd.DataFrame, rules: GateRules
) -> PromotionOutcome:
    """Judge the challenger against the champion on `holdout` and record the outcome."""
    return record_verdict(registry, judge_versions(registry, challenger_version, holdout, rules))


def load_report(registry: ModelRegistry, version: str) -> dict[str, object] | None:
    """The gate report logged for `version` (parsed JSON), or None when it has none."""
    info = registry.version(version)
    path = info.tags.get("gate.report")
    if not info.run_id or not path:
        return None
    try:
        return json.loads(registry.load_text(info.run_id, path))
    except RegistryError:
        return None
