"""The champion guard's judgement: should a newly promoted champion be reverted? Pure
functions; the Dagster sensor gathers the facts (serving's refusal, labelled predictions)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from churnops.contract import Contract
from churnops.monitoring.prediction_store import PREDICTED_COLUMN


@dataclass(frozen=True)
class GuardPolicy:
    watch_seconds: float  # how long after a move the new champion is watched
    error_budget: float | None  # largest live error rate tolerated; None: not judged on errors
    min_labels: int  # labelled predictions needed before the error rate counts


@dataclass(frozen=True)
class LiveErrors:
    labelled: int
    wrong: int

    @property
    def rate(self) -> float:
        return self.wrong / self.labelled if self.labelled else 0.0


@dataclass(frozen=True)
class GuardVerdict:
    revert: bool
    reason: str


def live_errors(window: pd.DataFrame, version: str, contract: Contract) -> LiveErrors:
    """How many of `version`'s answers in `window` (a prediction-store read) have a label, and
    how many of those answered wrongly."""
    target = contract.target
    rows = window[window["model_version"].astype(str) == str(version)]
    truth = rows[target.name].map(target.encode, na_action="ignore")
    answer = rows[PREDICTED_COLUMN].map(target.encode, na_action="ignore")
    labelled = truth.notna() & answer.notna()
    wrong = int((truth[labelled] != answer[labelled]).sum())
    return LiveErrors(int(labelled.sum()), wrong)


def judge_champion(
    version: str,
    age_seconds: float,
    refused_reason: str | None,
    errors: LiveErrors | None,
    policy: GuardPolicy,
) -> GuardVerdict:
    """Revert when serving refused the champion (it cannot load or score it) or, with a budget,
    when its live error rate breaks it; only within the watch window after the move."""
    if age_seconds > policy.watch_seconds:
        return GuardVerdict(
            False,
            f"champion v{version} has held the alias for {age_seconds:.0f} s, past the "
            f"{policy.watch_seconds:.0f} s watch window",
        )
    if refused_reason is not None:
        return GuardVerdict(True, f"serving refused champion v{version}: {refused_reason}")
    budget = policy.error_budget
    counted = errors is not None and errors.labelled >= policy.min_labels
    if budget is not None and counted and errors.rate > budget:
        return GuardVerdict(
            True,
            f"champion v{version}'s live error rate {errors.rate:.1%} over "
            f"{errors.labelled} labelled predictions breaks the {budget:.1%} budget",
        )
    note = (
        f"; live error rate {errors.rate:.1%} over {errors.labelled} labelled predictions "
        f"({policy.min_labels} needed)"
        if errors is not None and policy.error_budget is not None
        else ""
    )
    return GuardVerdict(
        False,
        f"watching champion v{version} ({age_seconds:.0f} s of {policy.watch_seconds:.0f} s): "
        f"serving has not refused it{note}",
    )
