"""Alias history: MLflow keeps only where an alias points now, so every move is recorded as a
model-version tag and replayed here. Pure functions, no MLflow imports."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

TAG_PREFIX = "churnops.alias_event."

Action = Literal["promote", "rollback"]


@dataclass(frozen=True)
class AliasEvent:
    alias: str
    action: Action
    to_version: str
    from_version: str | None
    at: str
    at_ns: int
    reason: str

    def tag_key(self) -> str:
        return f"{TAG_PREFIX}{self.alias}.{self.at_ns:020d}"

    def tag_value(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


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


def champion_stack(events: list[AliasEvent]) -> list[str]:
    """Replay promotions (push) and rollbacks (pop): the top is the current holder and the
    entry below it is where a rollback goes, so repeated rollbacks walk further back."""
    stack: list[str] = []
    for event in events:
        if event.action == "promote":
            stack.append(event.to_version)
        elif stack:
            stack.pop()
    return stack


def rollback_target(events: list[AliasEvent]) -> str | None:
    stack = champion_stack(events)
    return stack[-2] if len(stack) >= 2 else None
