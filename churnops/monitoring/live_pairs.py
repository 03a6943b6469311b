"""The live comparison's read: requests the champion answered, the challenger scored in
shadow, and a label named by request id arrived for; nothing else leaves the store.

Bounded by `since_ts` on all three tables (a label always comes after its prediction), so on
PostgreSQL only the day partitions of the window are scanned."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Engine, func, select

from churnops.contract import Contract
from churnops.monitoring.live_comparison import LiveComparison, compare_live
from churnops.monitoring.prediction_store import SCORE_COLUMN, ensure_tables, store_schema

PAIR_COLUMNS = ("request_id", "ts", "champion_score", "challenger_score", "label")


def read_live_pairs(
    engine: Engine,
    contract: Contract,
    champion_version: str,
    challenger_version: str,
    since_ts: float,
) -> pd.DataFrame:
    """One row per labelled paired request after `since_ts`, oldest first, in `PAIR_COLUMNS`
    (the label 0/1 by the contract's target; a request labelled twice counts its latest)."""
    ensure_tables(engine, contract)
    schema = store_schema(contract)
    predictions, shadow, feedback = schema.predictions, schema.shadow, schema.feedback
    latest = (
        select(func.max(feedback.c.id))
        .where(feedback.c.request_id.is_not(None), feedback.c.ts > since_ts)
        .group_by(feedback.c.request_id)
    )
    target = contract.target.name
    query = (
        select(
            predictions.c.request_id,
            predictions.c.ts,
            predictions.c[SCORE_COLUMN].label("champion_score"),
            shadow.c[SCORE_COLUMN].label("challenger_score"),
            feedback.c[target].label("label"),
        )
        .join(shadow, shadow.c.request_id == predictions.c.request_id)
        .join(feedback, feedback.c.request_id == predictions.c.request_id)
        .where(
            predictions.c.model_version == str(champion_version),
            predictions.c.ts > since_ts,
            shadow.c.model_version == str(challenger_version),
            shadow.c.ts > since_ts,
            feedback.c.id.in_(latest),
        )
        .order_by(predictions.c.ts)
    )
    with engine.connect() as connection:
        frame = pd.DataFrame(connection.execute(query).fetchall(), columns=list(PAIR_COLUMNS))
    frame["label"] = frame["label"].map(contract.target.encode).astype(np.int64)
    return frame


def live_comparison(
    engine: Engine,
    contract: Contract,
    champion_version: str,
    challenger_version: str,
    since_ts: float,
    confidence: float,
) -> LiveComparison | None:
    """The paired comparison of the two versions on the labelled requests after `since_ts`,
    or None when there is none yet."""
    pairs = read_live_pairs(engine, contract, champion_version, challenger_version, since_ts)
    if pairs.empty:
        return None
    return compare_live(
        pairs["label"].to_numpy(),
        pairs["champion_score"].to_numpy(),
        pairs["challenger_score"].to_numpy(),
        champion_version=str(champion_version),
        challenger_version=str(challenger_version),
        confidence=confidence,
    )
