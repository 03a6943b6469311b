"""A non-Telco contract for tests: no id column, a 0/1 target, a boolean, an open categorical,
a nullable number and a header that is not a Python name."""

from __future__ import annotations

from churnops.contract import Contract, parse_contract

GYM: Contract = parse_contract(
    {
        "version": 1,
        "dataset": "gym-members",
        "target": {"name": "left", "positive": [1], "negative": [0]},
        "features": [
            {"name": "age", "kind": "integer", "minimum": 16, "maximum": 99, "example": 41},
            {"name": "has pass", "kind": "boolean", "example": True},
            {"name": "club", "kind": "categorical", "example": "Leeds"},
            {"name": "plan", "kind": "categorical", "categories": ["basic", "plus"]},
            {"name": "visits", "kind": "numeric", "minimum": 0, "nullable": True},
        ],
    },
    "gym test contract",
)
