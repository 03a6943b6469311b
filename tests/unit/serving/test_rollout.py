"""Shadow and canary serving: the canary's sticky hash, the journal's second row kind, and the
runtime's routing with fake models (no registry, no server)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from churnops.contract import derive_row_id, telco_contract
from churnops.monitoring import prediction_store
from registry.interface import CHALLENGER, CONTRACT_DATASET_TAG, CONTRACT_FINGERPRINT_TAG
from serving.champion import Candidate, ChampionFollower, LoadedModel
from serving.errors import Unavailable
from serving.rollout import (
    SHADOW_ROW,
    answered_by_challenger,
    canary_key,
    canary_point,
    split_writer,
)
from serving.runtime import ServingRuntime, log_rows, shadow_log_rows
from tests.unit.serving.contracts import GYM

pytestmark = pytest.mark.unit

TELCO = telco_contract()
ROW = [TELCO.example_record()[name] for name in TELCO.feature_names]


@pytest.mark.parametrize("share", [0.05, 0.2, 0.5, 0.9])
def test_the_canary_share_of_10k_customers_is_within_3_points_of_the_setting(share) -> None:
    picked = sum(answered_by_challenger(f"cust-{i}", ROW, share) for i in range(10_000))
    assert abs(picked / 10_000 - share) <= 0.03, picked


def test_a_customer_stays_with_its_version_and_a_larger_share_only_adds_customers() -> None:
    ids = [f"{i * 7919:08d}-{i % 13}" for i in range(2_000)]
    small = {i for i in ids if answered_by_challenger(i, ROW, 0.1)}
    assert small == {i for i in ids if answered_by_challenger(i, ROW, 0.1)}
    large = {i for i in ids if answered_by_challenger(i, ROW, 0.3)}
    assert small < large
    assert not any(answered_by_challenger(i, ROW, 0.0) for i in ids)
    assert all(answered_by_challenger(i, ROW, 1.0) for i in ids)


def test_the_hash_is_the_same_in_every_process() -> None:
    """Pinned values (BLAKE2b): Python's own `hash` of a string changes per process, and
    workers would split one customer's requests between versions."""
    assert canary_point("7590-VHVEG") == 0.5231491461209571
    assert canary_point("") == 0.8931675160897388


def test_a_record_without_an_id_is_routed_by_its_derived_row_id() -> None:
    assert canary_key(None, ROW) == derive_row_id(ROW)
    assert canary_key("c1", ROW) == "c1"


def test_the_writer_sends_each_row_kind_to_its_table() -> None:
    predictions, shadow = [], []
    write = split_writer(predictions.extend, shadow.extend)
    write([("r1", 1.0, "3"), (SHADOW_ROW, "r1", "4", 1.0, 0.2, "No"), ("r2", 2.0, "3")])
    assert predictions == [("r1", 1.0, "3"), ("r2", 2.0, "3")]
    assert shadow == [("r1", "4", 1.0, 0.2, "No")]
    write([("r3", 3.0, "3")])
    assert shadow == [("r1", "4", 1.0, 0.2, "No")]


class FakeModel:
    """Scores every row `value`, or raises when `value` is None."""

    def __init__(self, value: float | None) -> None:
        self.value = value

    def predict_proba(self, frame):
        if self.value is None:
            raise RuntimeError("cannot score")
        return np.tile([1 - self.value, self.value], (len(frame), 1))


def _loaded(version: str, value: float | None) -> LoadedModel:
    model = FakeModel(value)
    return LoadedModel(
        version, f"models:/m/{version}", model, lambda rows: model.predict_proba(rows)[:, 1]
    )


class _Follower:
    def __init__(self, current: LoadedModel | None) -> None:
        self.current = current


def _runtime(rollout: str, champion, challenger, share: float = 0.3) -> ServingRuntime:
    """A runtime's scoring parts only: `ServingRuntime.__init__` connects to a registry."""
    runtime = object.__new__(ServingRuntime)
    runtime.contract = TELCO
    runtime.rollout = rollout
    runtime.canary_share = share
    runtime.follower = _Follower(champion)
    runtime.challenger = _Follower(challenger) if rollout != "off" else None
    return runtime


def _items(count: int) -> list:
    return [(f"req-{i}", (f"cust-{i}", ROW)) for i in range(count)]


def test_shadow_answers_with_the_champion_and_carries_the_challengers_score() -> None:
    runtime = _runtime("shadow", _loaded("3", 0.2), _loaded("4", 0.7))
    scored = runtime._score_rows(_items(5))
    assert [(s.model.version, s.score, s.answer) for s in scored] == [("3", 0.2, "No")] * 5
    assert [(s.shadow.model.version, s.shadow.score, s.shadow.answer) for s in scored] == [
        ("4", 0.7, "Yes")
    ] * 5
    shadow_rows = shadow_log_rows(scored)
    assert [row[:3] for row in shadow_rows] == [(SHADOW_ROW, f"req-{i}", "4") for i in range(5)]
    assert [row[4:] for row in shadow_rows] == [(0.7, "Yes")] * 5
    assert [row[2] for row in log_rows(scored)] == ["3"] * 5  # the answered version is logged
    columns = prediction_store.SHADOW_COLUMNS
    assert len(columns) == len(shadow_rows[0]) - 1 and columns[:2] == (
        "request_id",
        "model_version",
    )


def test_a_challenger_that_fails_to_score_never_costs_an_answer() -> None:
    runtime = _runtime("shadow", _loaded("3", 0.2), _loaded("4", None))
    scored = runtime._score_rows(_items(2))
    assert [s.score for s in scored] == [0.2, 0.2] and shadow_log_rows(scored) == []


@pytest.mark.parametrize("rollout", ["shadow", "canary"])
def test_without_a_distinct_challenger_the_champion_alone_answers(rollout) -> None:
    for challenger in (None, _loaded("3", 0.9)):
        runtime = _runtime(rollout, _loaded("3", 0.2), challenger, share=1.0)
        scored = runtime._score_rows(_items(3))
        assert [(s.model.version, s.score, s.shadow) for s in scored] == [("3", 0.2, None)] * 3


def test_off_scores_with_the_champion_only() -> None:
    runtime = _runtime("off", _loaded("3", 0.2), None)
    assert [s.model.version for s in runtime._score_rows(_items(3))] == ["3"] * 3


def test_canary_answers_the_hashed_share_with_the_challenger_in_request_order() -> None:
    runtime = _runtime("canary", _loaded("3", 0.2), _loaded("4", 0.7), share=0.3)
    items = _items(1_000)
    scored = runtime._score_rows(items)
    assert [s.request_id for s in scored] == [request for request, _ in items]
    expected = ["4" if answered_by_challenger(f"cust-{i}", ROW, 0.3) else "3" for i in range(1_000)]
    assert [s.model.version for s in scored] == expected
    assert all(s.score == (0.7 if s.model.version == "4" else 0.2) for s in scored)
    assert all(s.shadow is None for s in scored)
    assert 250 <= expected.count("4") <= 350


def test_canary_explained_requests_follow_the_same_route() -> None:
    """A challenger without reason codes refuses the explained requests it would answer."""
    runtime = _runtime("canary", _loaded("3", 0.2), _loaded("4", 0.7), share=1.0)
    with pytest.raises(Unavailable, match="version 4"):
        runtime._explained_rows(_items(1))


def test_the_runtime_journals_shadow_rows_only_in_shadow_mode() -> None:
    journaled: list = []

    class Logger:
        def log(self, rows):
            journaled.append(rows)

    for rollout in ("shadow", "canary"):
        runtime = _runtime(rollout, _loaded("3", 0.2), _loaded("4", 0.7), share=0.0)
        runtime.logger = Logger()
        runtime._append_to_log(runtime._score_rows(_items(2)))
    shadow_run, canary_run = journaled
    assert [row[0] for row in shadow_run] == ["req-0", "req-1", SHADOW_ROW, SHADOW_ROW]
    assert [row[0] for row in canary_run] == ["req-0", "req-1"]


def test_a_challenger_follower_drops_its_model_when_the_alias_is_removed() -> None:
    tags = {CONTRACT_FINGERPRINT_TAG: TELCO.fingerprint, CONTRACT_DATASET_TAG: TELCO.dataset}
    target: dict = {"candidate": Candidate("4", "models:/m/4", tags)}
    followers = [
        ChampionFollower(lambda: target["candidate"], lambda uri: FakeModel(0.4), 60, TELCO),
        ChampionFollower(
            lambda: target["candidate"], lambda uri: FakeModel(0.4), 60, TELCO, alias=CHALLENGER
        ),
    ]
    for follower in followers:
        assert follower.refresh() and follower.current.version == "4"
    target["candidate"] = None
    champion, challenger = followers
    champion.refresh(), challenger.refresh()
    assert champion.current.version == "4"  # the champion keeps answering
    assert challenger.current is None


def test_shadow_scores_are_stored_once_per_request_and_version(tmp_path: Path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'store.db'}", GYM)
    rows = [("r1", "4", 1.0, 0.7, "1"), ("r1", "5", 1.0, 0.6, "1"), ("r2", "4", 2.0, 0.1, "0")]
    prediction_store.write_shadow_rows(engine, GYM, rows)
    prediction_store.write_shadow_rows(engine, GYM, rows[:1])  # shipped twice
    stored = prediction_store.read_shadow_predictions(engine, GYM)
    assert sorted(map(tuple, stored.itertuples(index=False))) == sorted(rows)
