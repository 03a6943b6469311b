"""The promotion gate as one unit: score the challenger and the champion on the challenger's
holdout, judge them, record the decision and its report, and move `@champion` when it wins.

Models are only compared under one data contract: a champion trained on another contract (or
before contracts were recorded) is not scored, and the challenger is judged alone."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal

import numpy as np
import pandas as pd

from churnops.contract import Contract
from churnops.model import scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.gate import GateReport, GateRules, judge_challenger
from registry.history import AliasEvent
from registry.interface import ModelRegistry, RegistryError, contract_mismatch

Approval = Literal["auto", "manual"]
# With manual approval a winning challenger waits, tagged, for `churnops approve VERSION`.
APPROVAL_TAG = "approval.status"
PENDING = "pending-approval"
APPROVED = "approved"
# With CHURNOPS_LIVE_GATE=on a winner waits for the live gate (`registry/live_gate.py`).
LIVE_STATUS = "live_gate.status"
AWAITING_LIVE = "awaiting-live-evidence"
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
    pending_approval: bool = False  # the gate passed it; a person must approve the move
    awaiting_live_evidence: bool = False  # the gate passed it; the live gate decides

    @property
    def promoted(self) -> bool:
        return self.report.promote and not self.pending_approval and not self.awaiting_live_evidence

    @property
    def champion_version(self) -> str | None:
        """Who holds `@champion` after the gate."""
        return self.challenger_version if self.promoted else self.previous_champion


def holdout_scores(
    registry: ModelRegistry, version: str, holdout: pd.DataFrame, contract: Contract
) -> np.ndarray:
    """Churn probabilities of a registered version, loaded as serving would load it."""
    model = registry.load_model(registry.model_uri(version))
    return scoring.churn_probability(model, holdout, contract)


def holdout_auc(
    registry: ModelRegistry, version: str, holdout: pd.DataFrame, contract: Contract
) -> float:
    scores = holdout_scores(registry, version, holdout, contract)
    return evaluate_scores(scoring.labels(holdout, contract), scores).metrics["roc_auc"]


def _judged_alone(report: GateReport, mismatch: str) -> GateReport:
    """The report of a challenger judged without the champion, saying why."""
    verdict = report.reason.removeprefix("no champion yet; ")
    reason = f"{mismatch}: not compared, the challenger is judged alone; {verdict}"
    return replace(report, reason=reason)


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
    registry: ModelRegistry,
    challenger_version: str,
    holdout: pd.DataFrame,
    rules: GateRules,
    contract: Contract,
    frozen_rows: int | None = None,
) -> GateVerdict:
    """Both models are loaded from the registry and scored on `holdout` (typed by `contract`,
    the challenger's): the champion is never compared by the number it was promoted with,
    nor at all when it was trained on another contract."""
    champion = registry.champion()
    previous = champion.version if champion else None
    champion_scores = None
    mismatch = None
    if champion is not None and previous != challenger_version:
        mismatch = contract_mismatch(f"champion v{previous}", champion.tags, contract)
        if mismatch is None:
            champion_scores = holdout_scores(registry, previous, holdout, contract)
    challenger_scores = holdout_scores(registry, challenger_version, holdout, contract)
    report = judge_challenger(
        holdout,
        challenger_scores,
        champion_scores,
        rules,
        contract=contract,
        frozen_rows=frozen_rows,
    )
    if mismatch is not None:
        report = _judged_alone(report, mismatch)
    return GateVerdict(report, challenger_version, previous)


def record_verdict(
    registry: ModelRegistry,
    verdict: GateVerdict,
    approval: Approval = "auto",
    live_gate: bool = False,
) -> PromotionOutcome:
    """The report goes to the challenger's run (`gate/report.json`, `gate/report.md`), the
    decision to its version's tags; then `@champion` moves if the challenger won, or, under
    manual approval, the challenger is tagged `pending-approval` instead. With the live gate
    on, a winner that has a champion to be compared with stays `@challenger`, tagged
    `awaiting-live-evidence`, for the live gate (served in shadow) to decide."""
    report, version = verdict.report, verdict.challenger_version
    run_id = registry.version(version).run_id
    if run_id:
        registry.log_text(run_id, report.to_json(), REPORT_JSON)
        registry.log_text(run_id, report.to_markdown(), REPORT_MARKDOWN)
    registry.tag_version(version, gate_tags(report, verdict.previous_champion))
    if report.promote and live_gate and verdict.previous_champion is not None:
        registry.tag_version(version, {"gate.decision": AWAITING_LIVE, LIVE_STATUS: AWAITING_LIVE})
        return PromotionOutcome(
            report, version, verdict.previous_champion, None, awaiting_live_evidence=True
        )
    if report.promote and approval == "manual":
        pending = {
            "gate.decision": PENDING,
            APPROVAL_TAG: PENDING,
            "approval.requested_at": now_text(),
        }
        registry.tag_version(version, pending)
        return PromotionOutcome(report, version, verdict.previous_champion, None, True)
    event = registry.promote(version, report.reason, by="gate") if report.promote else None
    return PromotionOutcome(report, version, verdict.previous_champion, event)


def approve(registry: ModelRegistry, version: str, by: str) -> AliasEvent:
    """Promote a challenger the gate passed and left for approval, recording who approved it
    and when. Refuses (`RegistryError`) a version that is not pending approval, or one whose
    gate compared it with a champion that no longer holds the alias (the verdict is stale)."""
    info = registry.require_version(version, "to approve")
    status = info.tags.get(APPROVAL_TAG)
    if status != PENDING:
        decision = info.tags.get("gate.decision", "not gated")
        state = f"it is {status}" if status else f"gate decision: {decision}"
        raise RegistryError(f"version {version} is not pending approval ({state})")
    champion = registry.champion()
    judged_against = info.tags.get("gate.champion_version", "none")
    holder = champion.version if champion else "none"
    if holder != judged_against:
        raise RegistryError(
            f"the gate judged version {version} against champion {judged_against}, but "
            f"@champion is {holder} now: the verdict is stale, gate it again (retrain) before "
            "approving"
        )
    passed = info.tags.get("live_gate.reason") or info.tags.get("gate.reason", "passed the gate")
    reason = f"approved by {by}: {passed}"
    event = registry.promote(version, reason, action="approve", by=by)
    registry.tag_version(
        version,
        {
            "gate.decision": "promoted",
            APPROVAL_TAG: APPROVED,
            "approval.by": by,
            "approval.at": event.at,
        },
    )
    return event


def now_text() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def gate_challenger(
    registry: ModelRegistry,
    challenger_version: str,
    holdout: pd.DataFrame,
    rules: GateRules,
    contract: Contract,
    approval: Approval = "auto",
    live_gate: bool = False,
) -> PromotionOutcome:
    """Judge the challenger against the champion on `holdout` and record the outcome."""
    verdict = judge_versions(registry, challenger_version, holdout, rules, contract)
    return record_verdict(registry, verdict, approval, live_gate)


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
