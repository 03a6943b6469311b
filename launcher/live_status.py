"""`churnops status`'s live comparison block: the champion's answers and the shadowed
challenger's scores of the same labelled requests, compared pairwise, and what the live gate
makes of them. Read from the prediction store directly (a bounded, labelled-pairs-only read)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from churnops.contract import Contract
from churnops.monitoring import prediction_store
from churnops.monitoring.live_comparison import LiveComparison
from churnops.monitoring.live_gate import LiveGateRules, LiveVerdict, judge_live
from churnops.monitoring.live_pairs import live_comparison
from churnops.settings import Settings
from registry.interface import CHALLENGER, ModelRegistry
from registry.live_gate import comparison_since


@dataclass(frozen=True)
class LiveFacts:
    note: str  # what was compared, or why nothing was
    comparison: LiveComparison | None = None
    verdict: LiveVerdict | None = None  # what the live gate would decide now
    recorded: str | None = None  # the live gate's recorded decision and why


def live_facts(settings: Settings, contract: Contract, registry: ModelRegistry) -> LiveFacts:
    champion, challenger = registry.champion(), registry.by_alias(CHALLENGER)
    if champion is None or challenger is None or challenger.version == champion.version:
        return LiveFacts("no @challenger beside @champion: nothing to compare")
    versions = f"champion v{champion.version} vs challenger v{challenger.version}"
    url = settings.prediction_store
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return LiveFacts(f"{versions}: no prediction store yet")
    since = comparison_since(registry, champion.version, settings.live_comparison_days)
    engine = prediction_store.connect(url)
    try:
        comparison = live_comparison(
            engine,
            contract,
            champion.version,
            challenger.version,
            since,
            1 - 2 * settings.gate_alpha,
        )
    except SQLAlchemyError as exc:
        return LiveFacts(f"{versions}: the prediction store did not answer ({type(exc).__name__})")
    finally:
        engine.dispose()
    decided = challenger.tags.get("live_gate.decision")
    reason = challenger.tags.get("live_gate.reason", "")
    recorded = f"{decided}: {reason}" if decided else None
    if comparison is None:
        return LiveFacts(
            f"{versions}: no labelled paired requests yet (CHURNOPS_ROLLOUT=shadow and feedback "
            f"labels by request id, last {settings.live_comparison_days:g} days)",
            recorded=recorded,
        )
    rules = LiveGateRules(
        settings.live_gate_min_labelled, settings.live_gate_margin, settings.gate_alpha
    )
    return LiveFacts(versions, comparison, judge_live(comparison, rules), recorded)
