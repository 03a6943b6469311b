"""Alias history: MLflow keeps only where an alias points now, so every move is recorded as a
model-version tag and replayed here. Pure functions, no MLflow imports.

Moves made outside churnops (the MLflow UI, its REST API) leave no event: `external_move`
notices them by comparing the live alias with the last recorded event, and `rollback_refusal`
says why a rollback cannot tell where to go while the two disagree."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

TAG_PREFIX = "churnops.alias_event."

# promote: the gate; approve: a person after the gate; rollback: a person going back;
# revert: the champion guard going back by itself; external: a move churnops did not make.
Action = Literal["promote", "approve", "rollback", "revert", "external"]
PUSHES = ("promote", "approve", "external")
BACKWARDS = ("rollback", "revert")
# A move records its event first and sets the alias a moment later: a disagreement younger
# than this, with the alias still on the event's `from_version`, is a move in flight.
SETTLE_NS = 30 * 10**9


@dataclass(frozen=True)
class AliasEvent:
    alias: str
    action: Action
    to_version: str | None  # None: the alias was removed (only ever by an external move)
    from_version: str | None
    at: str
    at_ns: int
    reason: str
    by: str | None = None  # who made the move (a person's name, or the component that did)

    def tag_key(self) -> str:
        return f"{TAG_PREFIX}{self.alias}.{self.at_ns:020d}"

    def tag_value(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @property
    def tagged_version(self) -> str:
        """The version whose tags hold the event: where the alias went, else where it was."""
        version = self.to_version or self.from_version
        if version is None:
            raise ValueError("an alias event moves from or to some version")
        return version


def parse_events(tags_by_version: dict[str, dict[str, str]], alias: str) -> list[AliasEvent]:
    """Collect one alias's events from every version's tags, oldest first."""
    prefix = f"{TAG_PREFIX}{alias}."
    events = [
        AliasEvent(**json.loads(value))
        for tags in tags_by_version.values()
        for key, value in tags.items()
        if key.startswith(prefix)
    ]
    return sorted(events, key=lambda event: event.at_ns)


def champion_stack(events: list[AliasEvent]) -> list[str | None]:
    """Replay the moves: forward moves push, backward moves pop back to their target (or
    replace the top when the target was never below it). The top is always the last event's
    `to_version` and the entry below it is where a rollback goes, so repeated rollbacks walk
    further back."""
    stack: list[str | None] = []
    for event in events:
        if event.action in BACKWARDS:
            if event.to_version in stack[:-1]:
                while stack[-1] != event.to_version:
                    stack.pop()
                continue
            if stack:
                stack.pop()
        stack.append(event.to_version)
    return stack


def rollback_target(events: list[AliasEvent]) -> str | None:
    stack = champion_stack(events)
    return stack[-2] if len(stack) >= 2 else None


def _named(version: str | None) -> str:
    return f"v{version}" if version is not None else "no version (alias removed)"


def recorded_holder(events: list[AliasEvent]) -> str | None:
    """Where the history says the alias is: the last event's target."""
    return events[-1].to_version if events else None


def external_move(
    events: list[AliasEvent],
    alias: str,
    live: str | None,
    now_ns: int,
    at: str,
    detected_by: str,
    settle_ns: int = SETTLE_NS,
) -> AliasEvent | None:
    """The `external` event that makes the history agree with the live alias, or None when it
    already does (or a churnops move is in flight)."""
    recorded = recorded_holder(events)
    if live == recorded:
        return None
    last = events[-1] if events else None
    if last is not None and live == last.from_version:
        if now_ns - last.at_ns < settle_ns:
            return None
        reason = (
            f"@{alias} is on {_named(live)}, where it was before the {last.action} to "
            f"{_named(recorded)} recorded at {last.at}: that move never reached the alias, or "
            f"it was undone outside churnops"
        )
    elif last is None:
        reason = f"@{alias} was set to {_named(live)} outside churnops (no move recorded before)"
    else:
        reason = (
            f"@{alias} was moved from {_named(recorded)} to {_named(live)} outside churnops "
            f"(e.g. the MLflow UI or REST API)"
        )
    return AliasEvent(
        alias=alias,
        action="external",
        to_version=live,
        from_version=recorded,
        at=at,
        at_ns=now_ns,
        reason=f"{reason}; detected by {detected_by}",
        by=detected_by,
    )


def rollback_refusal(events: list[AliasEvent], alias: str, live: str | None) -> str | None:
    """Why a rollback of `alias` (now on `live`) cannot tell where to go, or None."""
    recorded = recorded_holder(events)
    if events and live != recorded:
        return (
            f"@{alias} is on {_named(live)} but churnops' alias history last put it on "
            f"{_named(recorded)}: it was moved outside churnops (or a move was interrupted), so "
            f"the version to go back to is unknown. `churnops status` records the move (a "
            f"rollback then goes back to the version it replaced), or name the target: "
            f"`churnops rollback --to VERSION`"
        )
    stack = champion_stack(events)
    if len(stack) < 2:
        return f"no previous champion is recorded to roll back to (@{alias} history)"
    if live is None:
        return f"@{alias} is on no version: there is nothing to roll back from"
    if stack[-2] is None:
        return (
            f"before {_named(live)} the @{alias} alias had been removed outside churnops: "
            f"name the target with `churnops rollback --to VERSION`"
        )
    return None
