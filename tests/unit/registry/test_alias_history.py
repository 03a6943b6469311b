"""Alias history that cannot lie, over the in-memory registry: moves made outside churnops are
recorded as `external` events, and a rollback refuses while it cannot tell where to go."""

from __future__ import annotations

import pytest

from churnops.contract import telco_contract
from registry.history import (
    SETTLE_NS,
    AliasEvent,
    champion_stack,
    external_move,
    rollback_refusal,
)
from registry.interface import CHAMPION, RegistryError
from registry.memory import InMemoryModelRegistry

pytestmark = pytest.mark.unit


def _registry(versions: int) -> InMemoryModelRegistry:
    registry = InMemoryModelRegistry("churn", "training")
    logged = registry.log_candidate("c", object(), {}, {}, contract=telco_contract())  # type: ignore[arg-type]
    for _ in range(versions):
        registry.register(logged, {})
    return registry


def _event(action: str, to: str | None, from_: str | None, at_ns: int) -> AliasEvent:
    return AliasEvent(CHAMPION, action, to, from_, "t", at_ns, "r")  # type: ignore[arg-type]


def test_a_move_outside_churnops_is_recorded_as_external_with_where_it_came_from() -> None:
    registry = _registry(3)
    registry.promote("1", "gate")
    registry.promote("2", "gate")
    registry.aliases[CHAMPION] = "3"  # what the MLflow UI does: no event
    event = registry.record_external_move("test")
    assert event is not None
    assert (event.action, event.from_version, event.to_version) == ("external", "2", "3")
    assert "moved from v2 to v3 outside churnops" in event.reason
    assert registry.record_external_move("test") is None  # recorded once
    assert [e.action for e in registry.alias_history()] == ["promote", "promote", "external"]
    # Recorded, the history tells where a rollback goes: the version the move replaced.
    assert registry.rollback("undo the UI move").to_version == "2"


def test_rollback_refuses_while_the_live_alias_disagrees_with_the_history() -> None:
    registry = _registry(3)
    registry.promote("1", "gate")
    registry.promote("2", "gate")
    registry.aliases[CHAMPION] = "3"
    with pytest.raises(RegistryError, match="on v3 but churnops' alias history last put it on v2"):
        registry.rollback()
    assert registry.champion().version == "3"  # nothing moved
    assert [e.action for e in registry.alias_history()] == ["promote", "promote"]
    event = registry.rollback("explicit", to="1", by="alice")
    assert (event.action, event.from_version, event.to_version, event.by) == (
        "rollback",
        "3",
        "1",
        "alice",
    )
    # The explicit rollback recorded the external move first, so the history replays true.
    assert [e.action for e in registry.alias_history()] == [
        "promote",
        "promote",
        "external",
        "rollback",
    ]
    assert champion_stack(registry.alias_history()) == ["1"]


def test_an_alias_removed_outside_churnops_is_recorded_and_rollback_refuses() -> None:
    registry = _registry(2)
    registry.promote("1", "gate")
    registry.promote("2", "gate")
    del registry.aliases[CHAMPION]
    event = registry.record_external_move("test")
    assert event is not None and (event.from_version, event.to_version) == ("2", None)
    assert event.tag_key() in registry.version("2").tags  # kept on the version it left
    with pytest.raises(RegistryError, match="nothing to roll back from"):
        registry.rollback()
    registry.aliases[CHAMPION] = "1"  # set again by hand
    assert registry.record_external_move("test").to_version == "1"
    with pytest.raises(RegistryError, match="had been removed outside churnops"):
        registry.rollback()


def test_a_champion_set_only_by_hand_has_no_previous_champion() -> None:
    registry = _registry(1)
    registry.aliases[CHAMPION] = "1"
    with pytest.raises(RegistryError, match="no previous champion"):
        registry.rollback()
    event = registry.record_external_move("test")
    assert event is not None and "no move recorded before" in event.reason


def test_rollback_to_a_deleted_or_current_version_is_refused() -> None:
    registry = _registry(2)
    registry.promote("1", "gate")
    with pytest.raises(RegistryError, match="no version 7"):
        registry.rollback(to="7")
    with pytest.raises(RegistryError, match="already on version 1"):
        registry.rollback(to="1")


def test_a_move_in_flight_is_not_an_external_one_but_an_interrupted_one_is() -> None:
    events = [_event("promote", "1", None, 10), _event("promote", "2", "1", 20)]
    # The alias still on v1 right after the v2 event: the move has not reached it yet.
    assert external_move(events, CHAMPION, "1", 20 + SETTLE_NS - 1, "t", "test") is None
    late = external_move(events, CHAMPION, "1", 20 + SETTLE_NS, "t", "test")
    assert late is not None and "never reached the alias, or it was undone" in late.reason
    assert (late.from_version, late.to_version) == ("2", "1")
    assert rollback_refusal(events, CHAMPION, "1") is not None


def test_replay_goes_back_to_a_named_target_and_walks_back_after_it() -> None:
    events = [_event("promote", v, None, i) for i, v in enumerate(["1", "2", "3", "4"])]
    events.append(_event("rollback", "2", "4", 10))
    assert champion_stack(events) == ["1", "2"]
    events.append(_event("revert", "9", "2", 11))  # a target never held: replaces the top
    assert champion_stack(events) == ["1", "9"]
    events.append(_event("approve", "5", "9", 12))
    assert rollback_refusal(events, CHAMPION, "5") is None
    assert champion_stack(events)[-2] == "9"
