"""Campaign economics: the profit curve by hand, the profit-maximising threshold, EMP and the
validation of the campaign numbers."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from churnops.contract import DECISION_THRESHOLD
from churnops.model.economics import (
    Campaign,
    build_campaign,
    expected_maximum_profit,
    profit_curve,
    profit_decision,
)

pytestmark = pytest.mark.unit

# Contacting a churner earns 0.3 * 200 - 10 = 50; contacting a stayer costs 10.
CAMPAIGN = Campaign(contact_cost=10, retained_value=200, success_rate=0.3)
# Six customers, a churner and a stayer tied at 0.8.
Y = np.array([1, 1, 0, 0, 1, 0])
SCORES = np.array([0.9, 0.8, 0.8, 0.6, 0.4, 0.1])


def test_profit_curve_matches_the_hand_computation() -> None:
    curve = profit_curve(Y, SCORES, CAMPAIGN)
    # Contact nobody, then each distinct score in turn, down to everybody.
    np.testing.assert_allclose(curve.thresholds, [1.0, 0.85, 0.7, 0.5, 0.25, 0.0])
    np.testing.assert_allclose(curve.profit_per_customer, np.array([0, 50, 90, 80, 130, 120]) / 6)
    np.testing.assert_allclose(curve.targeted_share, np.array([0, 1, 3, 4, 5, 6]) / 6)


def test_offer_cost_is_paid_by_retained_churners_and_by_every_contacted_stayer() -> None:
    campaign = Campaign(contact_cost=10, retained_value=200, success_rate=0.3, offer_cost=20)
    # Churner: 0.3 * (200 - 20) - 10 = 44; stayer: -(20 + 10) = -30.
    curve = profit_curve(Y, SCORES, campaign)
    np.testing.assert_allclose(curve.profit_per_customer, np.array([0, 44, 58, 28, 72, 42]) / 6)
    decision = profit_decision(Y, SCORES, campaign)
    assert decision.threshold == pytest.approx(0.25)
    assert decision.expected_profit_per_customer == pytest.approx(12.0)


def test_decision_takes_the_most_profitable_threshold_and_says_why() -> None:
    decision = profit_decision(Y, SCORES, CAMPAIGN)
    assert decision.threshold == pytest.approx(0.25)
    assert decision.expected_profit_per_customer == pytest.approx(130 / 6)
    assert decision.targeted_share == pytest.approx(5 / 6)
    assert CAMPAIGN.describe() in decision.basis
    assert "21.67 per customer" in decision.basis
    assert "83.3%" in decision.basis
    # The served rule reproduces the chosen point.
    contacted = np.greater_equal(SCORES, decision.threshold).mean()
    assert contacted == pytest.approx(decision.targeted_share)


def test_the_default_threshold_is_placed_on_the_curve() -> None:
    curve = profit_curve(Y, SCORES, CAMPAIGN)
    # Scores >= 0.5: 0.9, 0.8, 0.8, 0.6 -> two churners, two stayers.
    assert curve.point_at(DECISION_THRESHOLD) == pytest.approx((4 / 6, 80 / 6))
    assert curve.point_at(0.95) == (0.0, 0.0)
    assert curve.point_at(0.0) == pytest.approx((1.0, 120 / 6))


def test_perfectly_separating_scores_contact_exactly_the_churners() -> None:
    campaign = Campaign(contact_cost=5, retained_value=120, success_rate=0.4, offer_cost=10)
    y = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.7, 0.2, 0.9, 0.3, 0.1])
    decision = profit_decision(y, scores, campaign)
    assert 0.3 < decision.threshold < 0.7
    assert decision.threshold == pytest.approx(0.5)
    churn_rate = y.mean()
    assert decision.expected_profit_per_customer == pytest.approx(churn_rate * (0.4 * 110 - 5))
    assert decision.targeted_share == pytest.approx(churn_rate)


def test_a_campaign_that_never_pays_contacts_nobody() -> None:
    # Even a sure churner costs money: 0.3 * 200 - 100 < 0.
    campaign = Campaign(contact_cost=100, retained_value=200, success_rate=0.3)
    decision = profit_decision(Y, SCORES, campaign)
    assert decision.threshold == 1.0
    assert decision.expected_profit_per_customer == 0.0
    assert decision.targeted_share == 0.0
    assert "no threshold pays" in decision.basis
    assert "expected profit 0 per customer" in decision.basis
    assert "contact nobody (threshold 1.0)" in decision.basis
    assert campaign.describe() in decision.basis
    # The best contacting threshold, 0.85, loses 40 / 6 per customer.
    assert "0.8500" in decision.basis and "lose 6.667" in decision.basis


def test_breaking_even_at_best_contacts_nobody() -> None:
    # Five stayers above one churner: contacting everyone nets 50 - 50 = 0.
    y = np.array([0, 0, 0, 0, 0, 1])
    scores = np.array([0.9, 0.9, 0.9, 0.9, 0.9, 0.1])
    decision = profit_decision(y, scores, CAMPAIGN)
    assert decision.threshold == 1.0
    assert decision.targeted_share == 0.0


def test_no_campaign_keeps_the_default_threshold() -> None:
    decision = profit_decision(Y, SCORES, None)
    assert decision.threshold == DECISION_THRESHOLD == 0.5
    assert decision.basis == "0.5: no campaign economics set"
    assert decision.expected_profit_per_customer is None
    assert decision.targeted_share is None


def test_facts_are_json_ready() -> None:
    for decision in (profit_decision(Y, SCORES, CAMPAIGN), profit_decision(Y, SCORES, None)):
        facts = json.loads(json.dumps(decision.facts()))
        assert facts == {
            "threshold": decision.threshold,
            "basis": decision.basis,
            "expected_profit_per_customer": decision.expected_profit_per_customer,
            "targeted_share": decision.targeted_share,
        }


def test_ties_are_never_split_and_each_threshold_contacts_its_point() -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.uniform(0, 1, 5000), 2)  # about 100 distinct values, many ties
    y = (rng.uniform(0, 1, 5000) < scores).astype(int)
    curve = profit_curve(y, scores, CAMPAIGN)
    assert len(curve.thresholds) == len(np.unique(scores)) + 1
    assert (np.diff(curve.thresholds) < 0).all()
    assert ((curve.thresholds >= 0) & (curve.thresholds <= 1)).all()
    contacted = (scores[None, :] >= curve.thresholds[1:, None]).mean(axis=1)
    np.testing.assert_allclose(contacted, curve.targeted_share[1:])
    for threshold in (0.0, 0.333, 0.5, 0.77, 1.0):
        share, _ = curve.point_at(threshold)
        assert share == pytest.approx((scores >= threshold).mean())


def test_adjacent_float_scores_still_get_a_separating_threshold() -> None:
    low = 0.3
    high = float(np.nextafter(low, 1.0))
    decision = profit_decision(np.array([1, 0]), np.array([high, low]), CAMPAIGN)
    assert low < decision.threshold <= high
    assert decision.targeted_share == pytest.approx(0.5)


def _max_profit(y: np.ndarray, scores: np.ndarray, success_rate: float) -> float:
    campaign = CAMPAIGN.model_copy(update={"success_rate": success_rate})
    profit = profit_decision(y, scores, campaign).expected_profit_per_customer
    assert profit is not None
    return profit


def _noisy_holdout() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = (rng.uniform(0, 1, 2000) < 0.25).astype(int)
    scores = np.clip(0.25 + 0.3 * (y - 0.25) + rng.normal(0, 0.15, 2000), 0, 1)
    return y, scores


def test_emp_lies_within_the_range_of_max_profit_over_the_success_rate() -> None:
    y, scores = _noisy_holdout()
    emp = expected_maximum_profit(y, scores, CAMPAIGN)
    max_profits = [_max_profit(y, scores, rate) for rate in np.linspace(1e-6, 1, 101)]
    assert min(max_profits) <= emp <= max(max_profits)
    assert min(max_profits) < emp < max(max_profits)


def test_emp_of_a_concentrated_success_rate_is_the_maximum_profit() -> None:
    y, scores = _noisy_holdout()
    emp = expected_maximum_profit(y, scores, CAMPAIGN, alpha=3000, beta=7000)
    assert emp == pytest.approx(_max_profit(y, scores, 0.3), rel=1e-3)
    assert emp != pytest.approx(expected_maximum_profit(y, scores, CAMPAIGN), rel=1e-3)


def test_emp_of_free_contacts_and_perfect_scores_is_the_mean_success_rate() -> None:
    # With f = d = 0 the best rule contacts exactly the churners at any success rate,
    # so EMP = churn rate * CLV * E[gamma] = 0.4 * 200 * 6 / 20.
    campaign = Campaign(contact_cost=0, retained_value=200, success_rate=0.9)
    y = np.array([1, 0, 1, 0, 0])
    scores = np.array([0.7, 0.2, 0.9, 0.3, 0.1])
    assert expected_maximum_profit(y, scores, campaign) == pytest.approx(24.0, rel=1e-3)
    assert expected_maximum_profit(y, scores, campaign, alpha=1, beta=1) == pytest.approx(
        40.0, rel=1e-3
    )


def test_emp_rejects_a_bad_distribution() -> None:
    with pytest.raises(ValueError, match="alpha"):
        expected_maximum_profit(Y, SCORES, CAMPAIGN, alpha=0)
    with pytest.raises(ValueError, match="points"):
        expected_maximum_profit(Y, SCORES, CAMPAIGN, points=1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("contact_cost", -1.0),
        ("retained_value", 0.0),
        ("success_rate", 0.0),
        ("success_rate", 1.5),
        ("offer_cost", -0.5),
        ("retained_value", float("nan")),
    ],
)
def test_campaign_validation_names_the_field(field: str, value: float) -> None:
    numbers = {"contact_cost": 10.0, "retained_value": 200.0, "success_rate": 0.3}
    with pytest.raises(ValidationError, match=field):
        Campaign(**{**numbers, field: value})


def test_campaign_is_frozen_and_describes_itself() -> None:
    with pytest.raises(ValidationError):
        CAMPAIGN.contact_cost = 1.0  # type: ignore[misc]
    assert CAMPAIGN.describe() == "contact 10, retained value 200, success 30%, offer 0"
    campaign = Campaign(contact_cost=2.5, retained_value=80, success_rate=0.07, offer_cost=5)
    assert campaign.describe() == "contact 2.5, retained value 80, success 7%, offer 5"


def test_build_campaign_from_optional_settings() -> None:
    assert build_campaign() is None
    assert build_campaign(contact_cost=10, retained_value=200, success_rate=0.3) == CAMPAIGN
    full = build_campaign(contact_cost=10, retained_value=200, success_rate=0.3, offer_cost=4)
    assert full is not None and full.offer_cost == 4
    with pytest.raises(ValueError, match="campaign_retained_value, campaign_success_rate") as err:
        build_campaign(contact_cost=10)
    assert "campaign_contact_cost missing" not in str(err.value)
    with pytest.raises(ValueError, match="campaign_contact_cost, campaign_retained_value"):
        build_campaign(offer_cost=3)
    with pytest.raises(ValidationError, match="success_rate"):
        build_campaign(contact_cost=10, retained_value=200, success_rate=2)


@pytest.mark.parametrize(
    ("y", "scores", "message"),
    [
        ([], [], "at least one"),
        ([1, 0], [0.5], "2 labels but 1 scores"),
        ([1, 2], [0.5, 0.4], "labels"),
        ([1, 0], [0.5, 1.2], r"\[0, 1\]"),
        ([1, 0], [0.5, float("nan")], r"\[0, 1\]"),
    ],
)
def test_bad_inputs_are_rejected(y: list[int], scores: list[float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        profit_curve(np.array(y), np.array(scores), CAMPAIGN)
