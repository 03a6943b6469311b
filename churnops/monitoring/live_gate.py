"""The gate on live evidence: does the challenger's paired live performance allow promoting it?

Non-inferiority on ROC AUC: with at least `min_labelled` labelled paired requests, the
challenger passes when the lower bound of the interval of its AUC difference (challenger minus
champion, two-sided 1 - 2 alpha, i.e. a one-sided 1 - alpha bound) is at least `-margin`: it
may be worse than the champion by no more than the margin. Below that evidence it waits."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from churnops.monitoring.live_comparison import LiveComparison

Decision = Literal["promote", "reject", "wait"]


@dataclass(frozen=True)
class LiveGateRules:
    min_labelled: int
    margin: float
    alpha: float

    @property
    def confidence(self) -> float:
        return 1 - 2 * self.alpha


@dataclass(frozen=True)
class LiveVerdict:
    decision: Decision
    reason: str


def judge_live(comparison: LiveComparison | None, rules: LiveGateRules) -> LiveVerdict:
    """Promote, reject, or wait for more labelled paired requests."""
    if comparison is None or comparison.labelled < rules.min_labelled:
        have = comparison.labelled if comparison else 0
        return LiveVerdict(
            "wait", f"{have} labelled paired requests; waiting for {rules.min_labelled}"
        )
    auc = comparison.auc_diff
    versions = f"challenger v{comparison.challenger.version} vs champion "
    versions += f"v{comparison.champion.version}"
    if auc is None:
        return LiveVerdict(
            "wait",
            f"{versions}: {comparison.labelled} labelled paired requests but only "
            f"{comparison.churners} churners: AUC needs two of each class",
        )
    brier = comparison.brier_diff
    evidence = (
        f"live AUC {comparison.challenger.auc:.4f} vs {comparison.champion.auc:.4f}, diff "
        f"{auc.text()}; Brier diff {brier.text() if brier else 'n/a'}; "
        f"{comparison.labelled} labelled paired requests"
    )
    if auc.ci_low >= -rules.margin:
        return LiveVerdict(
            "promote",
            f"{versions}: not worse by more than {rules.margin:g} AUC (lower bound "
            f"{auc.ci_low:+.4f} >= {-rules.margin:+g}; {evidence})",
        )
    return LiveVerdict(
        "reject",
        f"{versions}: may be worse by more than {rules.margin:g} AUC (lower bound "
        f"{auc.ci_low:+.4f} < {-rules.margin:+g}; {evidence})",
    )
