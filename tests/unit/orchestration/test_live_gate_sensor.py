"""The live gate sensor and job over the in-memory registry and a SQLite prediction store: a
challenger whose paired live AUC is no worse than the margin is promoted with the evidence in
its tags and the alias history; a worse one is rejected and stays out; too little evidence
waits; manual approval leaves it pending."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import Engine

from churnops.contract import telco_contract
from churnops.data.synthetic import generate_customers
from churnops.monitoring import prediction_store
from churnops.monitoring.drift import SCORE_COLUMN
from churnops.settings import Settings
from orchestration.definitions import build_resources
from orchestration.live_gate import build_live_gate_sensor, live_gate
from orchestration.resources import InMemoryRegistryResource, memory_registry
from registry.promotion import APPROVAL_TAG, approve

pytestmark = pytest.mark.unit

TELCO = telco_contract()
SENSOR = build_live_gate_sensor(live_gate, interval_seconds=30)


def serve_pairs(
    engine: Engine, champion: str, challenger: str, rows: int, challenger_is: str, seed: int = 0
) -> None:
    """`rows` labelled requests answered by the champion (a fair model) and scored in shadow
    by the challenger: `better` ranks the labels well, `worse` inverts them."""
    rng = np.random.default_rng(seed)
    churn = rng.random(rows) < 0.3
    fair = np.clip(0.3 * churn + rng.random(rows) * 0.7, 0, 1)
    sharp = np.clip(0.6 * churn + rng.random(rows) * 0.4, 0, 1)
    shadow_scores = sharp if challenger_is == "better" else 1 - sharp
    customers = generate_customers(rows, seed=3).drop(columns=["Churn"])
    logged = customers.astype({c: str for c in customers.select_dtypes("category").columns})
    ids = [f"{seed}-{i}" for i in range(rows)]
    now = time.time()
    logged.insert(0, "request_id", ids)
    logged.insert(1, "ts", now + np.arange(rows) / 1000)
    logged.insert(2, "model_version", champion)
    logged[SCORE_COLUMN] = fair
    logged["churn"] = np.where(fair >= 0.5, "Yes", "No")
    records = logged.astype(object).where(pd.notna(logged), None).to_dict("records")
    prediction_store.write_predictions(engine, TELCO, records)
    shadow = [
        (ids[i], challenger, now + i / 1000, float(shadow_scores[i]), "No") for i in range(rows)
    ]
    prediction_store.write_shadow_rows(engine, TELCO, shadow)
    labels = [{"request_id": ids[i], "Churn": "Yes" if churn[i] else "No"} for i in range(rows)]
    prediction_store.write_feedback(engine, TELCO, labels)


class Rollout:
    def __init__(self, tmp_path: Path, **settings: object) -> None:
        namespace = uuid.uuid4().hex
        self.registry = memory_registry(namespace, "churn", "training")
        store = f"sqlite:///{tmp_path / 'store.db'}"
        self.engine = prediction_store.connect(store, TELCO)
        chosen = {"live_gate": "on", "live_gate_min_labelled": 100, "live_gate_margin": 0.02}
        self.resources = {
            **build_resources(Settings(prediction_store_url=store, **(chosen | settings))),
            "model_registry": InMemoryRegistryResource(
                namespace=namespace, model_name="churn", experiment="training"
            ),
        }
        logged = self.registry.log_candidate("c", object(), {}, {}, contract=TELCO)  # type: ignore[arg-type]
        self.champion, self.challenger = (self.registry.register(logged, {}) for _ in range(2))
        self.registry.promote(self.champion, "gate")
        self.registry.set_challenger(self.challenger)

    def serve(self, rows: int, challenger_is: str, seed: int = 0) -> None:
        serve_pairs(self.engine, self.champion, self.challenger, rows, challenger_is, seed)

    def tick(self):
        with dg.build_sensor_context(resources=self.resources) as context:
            return SENSOR(context)

    def run(self, request: dg.RunRequest) -> dg.ExecuteInProcessResult:
        result = live_gate.execute_in_process(
            run_config=request.run_config, resources=self.resources
        )
        assert result.success
        return result


def _metadata(result: dg.ExecuteInProcessResult) -> dict[str, object]:
    [output] = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def test_with_the_live_gate_off_the_comparison_is_reported_and_nothing_moves(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path, live_gate="off")
    rollout.serve(300, "better")
    request = rollout.tick()
    assert isinstance(request, dg.RunRequest) and request.run_key.startswith("live-comparison-")
    metadata = _metadata(rollout.run(request))
    assert metadata["decision"] == "reported only (the live gate is off; it would promote)"
    assert metadata["labelled_pairs"] == 300 and metadata["mlflow_run"]
    assert rollout.registry.champion().version == rollout.champion
    assert "live_gate.decision" not in rollout.registry.version(rollout.challenger).tags


def test_too_few_labelled_pairs_wait(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path)
    rollout.serve(60, "better")
    skip = rollout.tick()
    assert isinstance(skip, dg.SkipReason)
    assert "60 labelled paired requests; waiting for 100" in skip.skip_message


def test_a_challenger_no_worse_than_the_margin_is_promoted_with_its_evidence(
    tmp_path: Path,
) -> None:
    rollout = Rollout(tmp_path)
    registry, challenger = rollout.registry, rollout.challenger
    rollout.serve(300, "better")
    request = rollout.tick()
    assert isinstance(request, dg.RunRequest), request
    assert request.run_key == f"live-gate-v{challenger}-vs-v{rollout.champion}"
    metadata = _metadata(rollout.run(request))
    assert metadata["decision"] == "promoted" and metadata["labelled_pairs"] == 300
    assert metadata["challenger_auc"] > metadata["champion_auc"]
    assert registry.champion().version == challenger
    tags = registry.version(challenger).tags
    assert tags["live_gate.decision"] == "promoted" and tags["live_gate.labelled"] == "300"
    assert tags["live_gate.champion_version"] == rollout.champion
    event = registry.alias_history()[-1]
    assert (event.action, event.to_version, event.by) == ("promote", challenger, "live_gate")
    assert event.reason.startswith(f"live gate: challenger v{challenger} vs champion v")
    assert "not worse by more than 0.02 AUC" in event.reason
    assert "no @challenger beside champion" in rollout.tick().skip_message


def test_a_worse_challenger_is_rejected_and_keeps_out(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path)
    registry = rollout.registry
    rollout.serve(300, "worse")
    request = rollout.tick()
    assert isinstance(request, dg.RunRequest), request
    metadata = _metadata(rollout.run(request))
    assert metadata["decision"] == "rejected"
    assert "may be worse by more than 0.02 AUC" in metadata["reason"]
    assert registry.champion().version == rollout.champion
    tags = registry.version(rollout.challenger).tags
    assert tags["live_gate.decision"] == "rejected" and tags["gate.decision"] == "rejected"
    assert len(registry.alias_history()) == 1  # only the first promotion
    assert "already rejected by the live gate" in rollout.tick().skip_message


def test_manual_approval_leaves_a_passing_challenger_pending(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path, gate_approval="manual")
    registry, challenger = rollout.registry, rollout.challenger
    rollout.serve(300, "better")
    metadata = _metadata(rollout.run(rollout.tick()))
    assert metadata["decision"] == "pending-approval"
    assert registry.champion().version == rollout.champion
    assert registry.version(challenger).tags[APPROVAL_TAG] == "pending-approval"
    event = approve(registry, challenger, "alice")
    assert registry.champion().version == challenger
    assert event.reason.startswith(f"approved by alice: challenger v{challenger} vs champion")


def test_a_challenger_the_offline_gate_rejected_is_not_judged_live(tmp_path: Path) -> None:
    rollout = Rollout(tmp_path)
    rollout.registry.tag_version(
        rollout.challenger,
        {"gate.decision": "rejected", "gate.summary": "not significantly better"},
    )
    rollout.serve(300, "better")
    assert "rejected by the offline gate (not significantly better)" in rollout.tick().skip_message
