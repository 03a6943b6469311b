"""The live comparison's read on SQLite: only requests the champion answered after the bound,
that the challenger scored in shadow and that a label names by request id (its latest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from churnops.monitoring.live_pairs import PAIR_COLUMNS, read_live_pairs
from tests.unit.core.test_binned_drift import _customers, _logged

pytestmark = pytest.mark.unit

TELCO = telco_contract()
SINCE = 100.5  # r0 (ts 100) is before the window


def fill_pairs(engine: Engine) -> dict[str, tuple[float, float, int]]:
    """Seven logged requests of which three are labelled pairs of champion v1 and challenger v2
    after `SINCE`; returns those three: request id -> (champion score, challenger score, label)."""
    rows = _logged(_customers(7, 5), 100)
    for i, row in enumerate(rows):
        row["request_id"] = f"r{i}"
    rows[6]["model_version"] = "3"  # answered by another version
    prediction_store.write_predictions(engine, TELCO, rows)
    shadow = [(f"r{i}", "2", 100.0 + i, 0.1 * (i + 1), "No") for i in (0, 1, 2, 3, 4, 6)]
    shadow.append(("r5", "9", 105.0, 0.6, "Yes"))  # scored by another challenger only
    prediction_store.write_shadow_rows(engine, TELCO, shadow)
    labels = [("r0", "Yes"), ("r1", "No"), ("r2", "No"), ("r3", "Yes"), ("r5", "Yes")]
    labels += [("r6", "No"), ("r1", "Yes")]  # r1 corrected: the latest counts
    prediction_store.write_feedback(
        engine, TELCO, [{"request_id": r, "Churn": label} for r, label in labels]
    )
    prediction_store.write_feedback(engine, TELCO, [{"customerID": "c104", "Churn": "Yes"}])
    score = {row["request_id"]: row["churn_probability"] for row in rows}
    return {
        "r1": (score["r1"], 0.2, 1),
        "r2": (score["r2"], 0.3, 0),
        "r3": (score["r3"], 0.4, 1),
    }


def check_pairs(engine: Engine) -> None:
    expected = fill_pairs(engine)
    pairs = read_live_pairs(engine, TELCO, "1", "2", since_ts=SINCE)
    assert tuple(pairs.columns) == PAIR_COLUMNS
    assert pairs["request_id"].tolist() == list(expected)
    found = pairs.set_index("request_id")[["champion_score", "challenger_score", "label"]]
    for request_id, (champion, challenger, label) in expected.items():
        assert found.loc[request_id].tolist() == pytest.approx([champion, challenger, label])
    assert read_live_pairs(engine, TELCO, "1", "2", since_ts=200.0).empty


def test_only_labelled_pairs_of_the_two_versions_after_the_bound_are_read(
    tmp_path: Path,
) -> None:
    check_pairs(prediction_store.connect(f"sqlite:///{tmp_path / 'store.db'}", TELCO))


def test_shadow_scores_before_a_time_are_pruned(tmp_path: Path) -> None:
    engine = prediction_store.connect(f"sqlite:///{tmp_path / 'store.db'}", TELCO)
    fill_pairs(engine)
    assert prediction_store.prune_shadow_predictions(engine, TELCO, before_ts=103.0) == 3
    left = prediction_store.read_shadow_predictions(engine, TELCO)
    assert sorted(left["request_id"]) == ["r3", "r4", "r5", "r6"]
