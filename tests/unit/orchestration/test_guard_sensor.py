"""The champion guard sensor over the in-memory registry and a SQLite prediction store: a
newly promoted champion whose labelled answers break the error budget is reverted by the
`revert_champion` job; moves made by hand are recorded on the way."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from churnops.contract import telco_contract
from churnops.data.synthetic import generate_customers
from churnops.monitoring import prediction_store
from churnops.monitoring.drift import SCORE_COLUMN
from churnops.settings import Settings
from launcher.processes import free_port
from orchestration.definitions import build_resources
from orchestration.guard import build_guard_sensor, revert_champion
from orchestration.resources import InMemoryRegistryResource, ServingEndpoint, memory_registry
from registry.interface import CHAMPION

pytestmark = pytest.mark.unit

TELCO = telco_contract()
SENSOR = build_guard_sensor(revert_champion, interval_seconds=15)


class Guard:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        namespace = uuid.uuid4().hex
        self.registry = memory_registry(namespace, "churn", "training")
        store = f"sqlite:///{tmp_path / 'store.db'}"
        self.engine = prediction_store.connect(store)
        self.resources = {
            **build_resources(Settings(prediction_store_url=store, **settings)),
            "model_registry": InMemoryRegistryResource(
                namespace=namespace, model_name="churn", experiment="training"
            ),
            # Nothing listens here: serving is away, the error budget still judges.
            "serving": ServingEndpoint(status_url=f"http://127.0.0.1:{free_port()}/model"),
        }
        logged = self.registry.log_candidate("c", object(), {}, {}, contract=TELCO)  # type: ignore[arg-type]
        self.versions = [self.registry.register(logged, {}) for _ in range(2)]

    def serve(self, version: str, rows: int, wrong: int) -> None:
        """`rows` labelled answers of `version`, `wrong` of them wrong."""
        customers = generate_customers(rows, seed=3).drop(columns=["Churn"])
        logged = customers.astype({c: str for c in customers.select_dtypes("category").columns})
        logged.insert(0, "request_id", [f"{version}-{i}" for i in range(rows)])
        logged.insert(1, "ts", time.time() + np.arange(rows) / 1000)
        logged.insert(2, "model_version", version)
        logged[SCORE_COLUMN] = 0.9
        logged["churn"] = "Yes"
        records = logged.astype(object).where(pd.notna(logged), None).to_dict("records")
        prediction_store.write_predictions(self.engine, TELCO, records)
        labels = ["No"] * wrong + ["Yes"] * (rows - wrong)
        prediction_store.write_feedback(
            self.engine,
            TELCO,
            [{"request_id": f"{version}-{i}", "Churn": label} for i, label in enumerate(labels)],
        )

    def tick(self):
        with dg.build_sensor_context(resources=self.resources) as context:
            return SENSOR(context)


def test_a_champion_breaking_the_error_budget_is_reverted(tmp_path: Path) -> None:
    guard = Guard(tmp_path, revert_error_budget=0.3, revert_min_labels=20)
    old, new = guard.versions
    guard.registry.promote(old, "gate")
    guard.serve(old, 50, wrong=40)  # before the new champion: not counted against it
    guard.registry.promote(new, "gate")
    guard.serve(new, 30, wrong=6)
    watching = guard.tick()
    assert "live error rate 20.0% over 30 labelled" in watching.skip_message
    assert "serving did not answer" in watching.skip_message
    # Corrected labels for the first 10 (6 already wrong): the latest counts, 10 of 30 wrong.
    prediction_store.write_feedback(
        guard.engine, TELCO, [{"request_id": f"{new}-{i}", "Churn": "No"} for i in range(10)]
    )
    request = guard.tick()
    assert isinstance(request, dg.RunRequest), request
    reason = request.run_config["ops"]["revert_version"]["config"]["reason"]
    assert "33.3% over 30 labelled predictions breaks the 30.0% budget" in reason
    result = revert_champion.execute_in_process(
        run_config=request.run_config, resources=guard.resources
    )
    assert result.success and guard.registry.champion().version == old
    event = guard.registry.alias_history()[-1]
    assert (event.action, event.from_version, event.to_version) == ("revert", new, old)


def test_the_guard_records_a_hand_move_and_watches_it(tmp_path: Path) -> None:
    guard = Guard(tmp_path)
    old, new = guard.versions
    guard.registry.promote(old, "gate")
    guard.registry.aliases[CHAMPION] = new  # by hand, outside churnops
    skipped = guard.tick()
    assert skipped.skip_message.startswith("recorded an external move (@champion was moved")
    assert f"watching champion v{new}" in skipped.skip_message
    assert guard.registry.alias_history()[-1].action == "external"


def test_a_first_champion_cannot_be_reverted_and_the_sensor_says_so(tmp_path: Path) -> None:
    guard = Guard(tmp_path, revert_error_budget=0.1, revert_min_labels=5)
    only = guard.versions[0]
    guard.registry.promote(only, "gate")
    guard.serve(only, 10, wrong=10)
    skipped = guard.tick()
    assert "breaks the 10.0% budget, but cannot revert: no previous champion" in (
        skipped.skip_message
    )
    off = Guard(tmp_path, revert_watch_seconds=0)
    off.registry.promote(off.versions[0], "gate")
    assert "automatic revert is off" in off.tick().skip_message
