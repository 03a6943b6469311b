"""Shadow and canary serving (`CHURNOPS_ROLLOUT`): which model answers a customer, and how the
challenger's shadow scores travel through the prediction journal.

Canary routing hashes the customer's id (the derived row id when a record has none), so a
customer is answered by the same version on every request and from every worker, and raising
the share only adds customers: none moves back to the champion.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

from churnops.contract import derive_row_id

Row = Sequence[Any]
# The first field of a journaled shadow score; a prediction row starts with its request id
# (hexadecimal), so the two kinds share the journal's segments and order without a new format.
SHADOW_ROW = "shadow"
_HASH_SPAN = float(2**64)


def canary_key(customer_id: str | None, row: Sequence[object]) -> str:
    """What the canary hashes: the customer id, else the row's derived id."""
    return customer_id if customer_id is not None else derive_row_id(row)


def canary_point(key: str) -> float:
    """A stable point in [0, 1) for `key` (the same in every process, unlike `hash`)."""
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / _HASH_SPAN


def answered_by_challenger(customer_id: str | None, row: Sequence[object], share: float) -> bool:
    return canary_point(canary_key(customer_id, row)) < share


def split_writer(
    write_predictions: Callable[[Sequence[Row]], None],
    write_shadow: Callable[[Sequence[Row]], None],
) -> Callable[[Sequence[Row]], None]:
    """A journal writer that sends prediction rows and shadow rows to their own tables.
    Predictions go first: a shadow score is never stored without the answer it shadowed."""

    def write(rows: Sequence[Row]) -> None:
        predictions = [row for row in rows if row[0] != SHADOW_ROW]
        shadow = [row[1:] for row in rows if row[0] == SHADOW_ROW]
        write_predictions(predictions)
        if shadow:
            write_shadow(shadow)

    return write
