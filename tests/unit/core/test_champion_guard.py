"""The champion guard's judgement: revert on serving's refusal or a broken error budget, only
inside the watch window, counting each version's labelled answers only."""

from __future__ import annotations

import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.monitoring.guard import GuardPolicy, LiveErrors, judge_champion, live_errors
from churnops.monitoring.prediction_store import PREDICTED_COLUMN

pytestmark = pytest.mark.unit

TELCO = telco_contract()
POLICY = GuardPolicy(watch_seconds=600, error_budget=0.3, min_labels=4)


def test_serving_refusal_reverts_inside_the_window_only() -> None:
    verdict = judge_champion("4", 10, "OSError: not a model", None, POLICY)
    assert verdict.revert and verdict.reason == "serving refused champion v4: OSError: not a model"
    late = judge_champion("4", 601, "OSError: not a model", None, POLICY)
    assert not late.revert and "past the 600 s watch window" in late.reason


def test_the_error_budget_needs_enough_labels_and_a_budget() -> None:
    assert not judge_champion("4", 10, None, LiveErrors(3, 3), POLICY).revert  # too few labels
    broken = judge_champion("4", 10, None, LiveErrors(10, 4), POLICY)
    assert broken.revert and "40.0% over 10 labelled predictions breaks the 30.0%" in (
        broken.reason
    )
    fine = judge_champion("4", 10, None, LiveErrors(10, 3), POLICY)
    assert not fine.revert and "30.0% over 10 labelled" in fine.reason
    no_budget = GuardPolicy(watch_seconds=600, error_budget=None, min_labels=4)
    assert not judge_champion("4", 10, None, LiveErrors(10, 10), no_budget).revert


def test_live_errors_count_one_versions_labelled_answers_in_any_label_spelling() -> None:
    window = pd.DataFrame(
        {
            "model_version": ["4", "4", "4", "4", "3"],
            PREDICTED_COLUMN: ["Yes", "No", "Yes", "No", "Yes"],
            "Churn": ["yes", "Yes", None, "no", "No"],
        }
    )
    errors = live_errors(window, "4", TELCO)
    assert (errors.labelled, errors.wrong) == (3, 1)
    assert live_errors(window, "3", TELCO) == LiveErrors(1, 1)
    assert live_errors(window, "9", TELCO).rate == 0.0
