"""Model recipe, scoring, evaluation and alias history (the gate: test_gate.py; the champion
follower: tests/unit/serving/test_champion.py)."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.split import stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.importance import field_importance
from churnops.model.scoring import check_rows
from orchestration.plots import importance_figure
from registry.history import AliasEvent, champion_stack, parse_events, rollback_target

pytestmark = pytest.mark.unit
TELCO = telco_contract()


@pytest.fixture(scope="module")
def split():
    frame = clean_customers(generate_customers(6000, seed=5), "s", TELCO).frame
    return stratified_split(frame, TELCO)


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_recipes_learn_the_signal_and_stay_within_reviewed_types(split, name: str) -> None:
    model = recipes.train(split.train, name, seed=42, contract=TELCO)
    scores = scoring.churn_probability(model, split.holdout, TELCO)
    metrics = evaluate_scores(scoring.labels(split.holdout, TELCO), scores).metrics
    assert metrics["roc_auc"] >= 0.78
    assert set(sio.get_untrusted_types(data=sio.dumps(model))) <= set(recipes.TRUSTED_TYPES)


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_scorer_reproduces_the_pipeline_on_raw_rows(split, name: str, monkeypatch) -> None:
    model = recipes.train(split.train, name, seed=42, contract=TELCO)
    holdout = split.holdout.loc[:, list(TELCO.feature_names)].copy()
    holdout.loc[holdout.index[::5], "TotalCharges"] = np.nan
    rows = scoring.frame_to_rows(holdout, TELCO)
    score = scoring.scorer(model, check_rows(TELCO), TELCO)
    expected = scoring.churn_probability(model, holdout, TELCO)
    np.testing.assert_allclose(score(rows), expected, atol=1e-12)
    # The boosting recipe gets the direct path (the pipeline is never called); anything else
    # the plain pipeline call.
    calls = _count_pipeline_calls(model, monkeypatch)
    score(rows)
    assert (calls == []) == (name == "hist_gradient_boosting")


def test_a_fast_path_that_disagrees_with_the_pipeline_is_not_used(split, monkeypatch) -> None:
    model = recipes.train(split.train, "hist_gradient_boosting", seed=42, contract=TELCO)
    monkeypatch.setattr(
        scoring, "_direct_boosting_scorer", lambda m, c, lean: lambda rows: np.full(len(rows), 0.5)
    )
    rows = check_rows(TELCO)
    score = scoring.scorer(model, rows, TELCO)
    calls = _count_pipeline_calls(model, monkeypatch)
    assert not np.allclose(score(rows), 0.5)
    assert calls == [len(rows)]


def _count_pipeline_calls(model, monkeypatch) -> list[int]:
    """Rows per `predict_proba` call the pipeline gets from now on."""
    calls: list[int] = []
    original = model.predict_proba

    def counted(frame):
        calls.append(len(frame))
        return original(frame)

    monkeypatch.setattr(model, "predict_proba", counted)
    return calls


def test_field_importance_ranks_signal_fields_above_noise(split) -> None:
    model = recipes.train(split.train, "logistic_regression", seed=42, contract=TELCO)
    holdout = split.holdout
    features, y = scoring.features(holdout, TELCO), scoring.labels(holdout, TELCO)
    importance = field_importance(model, features, y, seed=1)
    assert list(importance.index[:3]).count("gender") == 0
    assert importance["Contract"] > 0.01 > abs(importance["gender"])
    assert importance.is_monotonic_decreasing
    figure = importance_figure(importance)
    assert figure.axes[0].get_yticklabels()[0].get_text() == importance.index[0]


def test_split_is_stratified_and_seeded(split) -> None:
    rates = split.summary()
    assert abs(rates["train_churn_rate"] - rates["holdout_churn_rate"]) < 0.01
    assert rates["holdout_rows"] == 1200
    with pytest.raises(ValueError, match="holdout_fraction"):
        stratified_split(split.train, TELCO, holdout_fraction=1.5)


def test_evaluation_refuses_a_single_class_holdout() -> None:
    with pytest.raises(ValueError, match="both"):
        evaluate_scores(np.zeros(10, dtype=int), np.linspace(0, 1, 10))


def _event(action: str, to: str, at: int) -> AliasEvent:
    return AliasEvent("champion", action, to, None, "t", at, "r")  # type: ignore[arg-type]


def test_history_replay_walks_back_through_rollbacks() -> None:
    events = [_event("promote", "1", 1), _event("promote", "2", 2), _event("promote", "3", 3)]
    assert rollback_target(events) == "2"
    events.append(_event("rollback", "2", 4))
    assert champion_stack(events) == ["1", "2"]
    assert rollback_target(events) == "1"
    assert rollback_target(events[:1]) is None


def test_history_is_parsed_from_version_tags_in_time_order() -> None:
    second, first = _event("promote", "2", 20), _event("promote", "1", 10)
    other = AliasEvent("challenger", "promote", "9", None, "t", 5, "r")
    tags = {
        "2": {second.tag_key(): second.tag_value(), "unrelated": "x"},
        "1": {first.tag_key(): first.tag_value(), other.tag_key(): other.tag_value()},
    }
    assert parse_events(tags, "champion") == [first, second]
