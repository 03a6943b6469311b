"""The live gate's records: the evidence on the challenger's version (`live_gate.*` tags), and
the move through the promotion path (`@champion` with the evidence as the history's reason, or
`pending-approval` under manual approval). The judgement itself is
`churnops.monitoring.live_gate`; this module only writes it down."""

from __future__ import annotations

import time
from dataclasses import dataclass

from churnops.monitoring.live_comparison import LiveComparison
from churnops.monitoring.live_gate import LiveVerdict
from registry.history import AliasEvent
from registry.interface import CHAMPION, ModelRegistry
from registry.promotion import APPROVAL_TAG, LIVE_STATUS, PENDING, Approval, now_text

LIVE_BY = "live_gate"
DAY_SECONDS = 86_400.0


@dataclass(frozen=True)
class LiveOutcome:
    decision: str  # promoted, pending-approval or rejected
    event: AliasEvent | None  # the alias move, when promoted


def comparison_since(
    registry: ModelRegistry, champion_version: str, window_days: float, now: float | None = None
) -> float:
    """Where the live comparison's read starts: `window_days` ago, or when the champion last
    took the alias if that is later (its answers before were compared with other versions)."""
    since = (time.time() if now is None else now) - window_days * DAY_SECONDS
    moves = [e for e in registry.alias_history(CHAMPION) if e.to_version == champion_version]
    return max(since, moves[-1].at_ns / 1e9) if moves else since


def live_tags(comparison: LiveComparison, verdict: LiveVerdict, decision: str) -> dict[str, str]:
    auc, brier = comparison.auc_diff, comparison.brier_diff
    return {
        "live_gate.decision": decision,
        LIVE_STATUS: decision,
        "live_gate.reason": verdict.reason[:4000],
        "live_gate.champion_version": comparison.champion.version,
        "live_gate.labelled": str(comparison.labelled),
        "live_gate.auc_diff_ci": auc.text() if auc else "n/a",
        "live_gate.brier_diff_ci": brier.text() if brier else "n/a",
        "live_gate.at": now_text(),
    }


def record_live_verdict(
    registry: ModelRegistry,
    comparison: LiveComparison,
    verdict: LiveVerdict,
    approval: Approval = "auto",
) -> LiveOutcome:
    """Tag the challenger with the evidence; promote it (by `live_gate`, the verdict as the
    reason) when it passed, or leave it `pending-approval` for `churnops approve` under manual
    approval; a rejection is only recorded. A `wait` verdict records nothing."""
    if verdict.decision == "wait":
        raise ValueError("a live verdict that waits for evidence decides nothing to record")
    version = comparison.challenger.version
    if verdict.decision == "reject":
        registry.tag_version(
            version, {**live_tags(comparison, verdict, "rejected"), "gate.decision": "rejected"}
        )
        return LiveOutcome("rejected", None)
    if approval == "manual":
        registry.tag_version(
            version,
            {
                **live_tags(comparison, verdict, PENDING),
                "gate.decision": PENDING,
                "gate.champion_version": comparison.champion.version,
                APPROVAL_TAG: PENDING,
                "approval.requested_at": now_text(),
            },
        )
        return LiveOutcome(PENDING, None)
    registry.tag_version(
        version, {**live_tags(comparison, verdict, "promoted"), "gate.decision": "promoted"}
    )
    event = registry.promote(version, f"live gate: {verdict.reason}", by=LIVE_BY)
    return LiveOutcome("promoted", event)
