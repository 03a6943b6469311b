"""Model recipe, evaluation, alias history and the champion follower (the gate: test_gate.py)."""

from __future__ import annotations

import numpy as np
import pytest
import skops.io as sio

from churnops.contract import FEATURE_NAMES
from churnops.data.cleaning import clean_customers
from churnops.data.split import stratified_split
from churnops.data.synthetic import generate_customers
from churnops.model import recipes, scoring
from churnops.model.evaluation import evaluate_scores
from churnops.model.importance import field_importance
from orchestration.plots import importance_figure
from registry.history import AliasEvent, champion_stack, parse_events, rollback_target
from serving.champion import ChampionFollower, check_rows, pinned_resolver

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def split():
    return stratified_split(clean_customers(generate_customers(6000, seed=5), "s").frame)


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_recipes_learn_the_signal_and_stay_within_reviewed_types(split, name: str) -> None:
    model = recipes.train(split.train, name, seed=42)
    scores = scoring.churn_probability(model, split.holdout)
    assert evaluate_scores(scoring.labels(split.holdout), scores).metrics["roc_auc"] >= 0.78
    assert set(sio.get_untrusted_types(data=sio.dumps(model))) <= set(recipes.TRUSTED_TYPES)


@pytest.mark.parametrize("name", recipes.RECIPES)
def test_scorer_reproduces_the_pipeline_on_raw_rows(split, name: str, monkeypatch) -> None:
    model = recipes.train(split.train, name, seed=42)
    holdout = split.holdout.loc[:, list(FEATURE_NAMES)].copy()
    holdout.loc[holdout.index[::5], "TotalCharges"] = np.nan
    rows = scoring.frame_to_rows(holdout)
    score = scoring.scorer(model, check_rows())
    np.testing.assert_allclose(score(rows), scoring.churn_probability(model, holdout), atol=1e-12)
    # The boosting recipe gets the direct path (the pipeline is never called); anything else
    # the plain pipeline call.
    calls = _count_pipeline_calls(model, monkeypatch)
    score(rows)
    assert (calls == []) == (name == "hist_gradient_boosting")


def test_a_fast_path_that_disagrees_with_the_pipeline_is_not_used(split, monkeypatch) -> None:
    model = recipes.train(split.train, "hist_gradient_boosting", seed=42)
    monkeypatch.setattr(
        scoring, "_direct_boosting_scorer", lambda m: lambda rows: np.full(len(rows), 0.5)
    )
    score = scoring.scorer(model, check_rows())
    calls = _count_pipeline_calls(model, monkeypatch)
    assert not np.allclose(score(check_rows()), 0.5)
    assert calls == [len(check_rows())]


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
    model = recipes.train(split.train, "logistic_regression", seed=42)
    holdout = split.holdout
    importance = field_importance(model, scoring.features(holdout), scoring.labels(holdout), seed=1)
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
        stratified_split(split.train, holdout_fraction=1.5)


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


class FakeModel:
    def __init__(self, value: float) -> None:
        self.value = value

    def predict_proba(self, frame):
        return np.tile([1 - self.value, self.value], (len(frame), 1))


def test_follower_swaps_versions_and_refuses_broken_ones() -> None:
    target = {"version": ("1", "models:/m/1")}
    models = {"models:/m/1": FakeModel(0.2), "models:/m/2": FakeModel(0.3), "models:/m/3": None}

    def load(uri: str):
        model = models[uri]
        if model is None:
            raise OSError("artifact missing")
        return model

    follower = ChampionFollower(lambda: target["version"], load, poll_seconds=60)
    assert follower.refresh() and follower.current.version == "1"
    assert not follower.refresh()
    target["version"] = ("3", "models:/m/3")
    assert not follower.refresh()
    assert follower.current.version == "1" and "artifact missing" in follower.last_error
    status = follower.status()
    assert status["refused_version"] == "3" and "artifact missing" in status["refused_reason"]
    assert status["degraded"] and status["model_version"] == "1"
    models["models:/m/3"] = FakeModel(float("nan"))
    assert not follower.refresh() and follower.current.version == "1"
    assert "for the example record" in follower.status()["refused_reason"]
    target["version"] = ("2", "models:/m/2")
    assert follower.refresh() and follower.current.version == "2"
    status = follower.status()
    assert status["model_version"] == "2" and status["refused_version"] is None


def test_follower_without_a_champion_reports_why() -> None:
    follower = ChampionFollower(lambda: None, lambda uri: FakeModel(0.1), poll_seconds=60)
    assert not follower.refresh()
    assert follower.current is None
    assert "no model version holds the alias" in follower.status()["last_error"]


def test_pinned_resolver_reads_the_version() -> None:
    assert pinned_resolver("models:/churn/3")() == ("3", "models:/churn/3")
    assert pinned_resolver("runs:/abc/model")() == ("runs:/abc/model", "runs:/abc/model")


def test_follower_backs_off_while_the_registry_is_down_and_reports_degraded() -> None:
    up = {"registry": True}

    def resolve():
        if not up["registry"]:
            raise ConnectionError("connection refused")
        return ("1", "models:/m/1")

    follower = ChampionFollower(resolve, lambda uri: FakeModel(0.2), poll_seconds=10)
    assert follower.refresh() and follower.next_wait() == 10
    up["registry"] = False
    waits = []
    for _ in range(6):
        follower.refresh()
        waits.append(follower.next_wait())
    assert waits == [1, 2, 4, 8, 10, 10]
    status = follower.status()
    assert status["ready"] and status["degraded"] and status["consecutive_failures"] == 6
    assert "connection refused" in status["last_error"]
    up["registry"] = True
    follower.refresh()
    assert not follower.status()["degraded"] and follower.next_wait() == 10
