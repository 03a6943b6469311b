"""The live gate end to end on real processes: a Bento server in shadow mode following a real
MLflow registry answers with the champion and logs the challenger's scores, the simulator posts
the true labels to /feedback, and the live gate sensor (evaluated by Dagster) requests the
`live_gate` job, which promotes a better challenger; one Bento process then shadows a worse
challenger too (the aliases move, serving follows), and the live gate keeps it out."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import pytest
from typer.testing import CliRunner

from churnops.contract import telco_contract
from churnops.monitoring import prediction_store
from churnops.monitoring.live_pairs import read_live_pairs
from churnops.settings import Settings
from launcher.cli import app
from launcher.simulator import simulate
from orchestration.definitions import build_resources
from orchestration.live_gate import REPORT_JSON, build_live_gate_sensor, live_gate
from registry.interface import MONITORING_EXPERIMENT
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import start_bento, wait_ready
from tests.rollout_versions import register_flipped, wait_for_rollout

pytestmark = pytest.mark.integration

TELCO = telco_contract()
MODEL = "churn-live-gate"
SENSOR = build_live_gate_sensor(live_gate, interval_seconds=30)
LABELLED = 200


def _labelled_traffic(url: str, store: str, champion: str, challenger: str, seed: int) -> None:
    """Requests answered by the champion and shadowed by the challenger, each labelled."""
    sent = simulate(url, LABELLED + 20, contract=TELCO, seed=seed, batch_size=110)
    assert sent.errors == 0 and sent.labels_sent == LABELLED + 20
    engine = prediction_store.connect(store, TELCO)
    deadline = time.monotonic() + 30
    while len(read_live_pairs(engine, TELCO, champion, challenger, 0.0)) < LABELLED + 20:
        assert time.monotonic() < deadline, "shadow scores never reached the store"
        time.sleep(0.5)
    engine.dispose()


def _decide(resources: dict) -> tuple[dg.RunRequest, dict[str, object]]:
    with dg.build_sensor_context(resources=resources) as context:
        request = SENSOR(context)
    assert isinstance(request, dg.RunRequest), request
    result = live_gate.execute_in_process(run_config=request.run_config, resources=resources)
    assert result.success
    [output] = [e for e in result.all_node_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = {k: v.value for k, v in output.event_specific_data.metadata.items()}
    return request, metadata


def test_the_live_gate_promotes_a_better_shadowed_challenger_and_keeps_a_worse_one(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, figures
) -> None:
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "live-gate-tests")
    weak = register_flipped(registry, "weak", seed=3, flip=0.45)
    registry.promote(weak, "test: a weak champion")
    better = register_flipped(registry, "better", seed=11, flip=0.0)
    registry.set_challenger(better)
    store = f"sqlite:///{tmp_path / 'store.db'}"
    server = start_bento(
        tmp_path, mlflow_uri, MODEL, CHURNOPS_PREDICTION_STORE_URL=store, CHURNOPS_ROLLOUT="shadow"
    )
    settings = Settings(
        mlflow_tracking_uri=mlflow_uri,
        model_name=MODEL,
        prediction_store_url=store,
        live_gate="on",
        live_gate_min_labelled=LABELLED,
        live_gate_margin=0.02,
    )
    resources = build_resources(settings)
    try:
        wait_ready(server)
        wait_for_rollout(server.url, weak, better)
        _labelled_traffic(server.url, store, weak, better, seed=1)
        request, promoted = _decide(resources)
        assert request.run_key == f"live-gate-v{better}-vs-v{weak}"
        assert promoted["decision"] == "promoted", promoted["reason"]
        assert promoted["labelled_pairs"] == LABELLED + 20
        assert promoted["challenger_auc"] > promoted["champion_auc"] + 0.05
        assert registry.champion().version == better
        event = registry.alias_history()[-1]
        assert (event.action, event.from_version, event.to_version) == ("promote", weak, better)
        assert event.by == "live_gate" and "not worse by more than 0.02 AUC" in event.reason
        tags = registry.version(better).tags
        assert tags["live_gate.decision"] == "promoted" and tags["live_gate.labelled"] == "220"
        runs = registry.client.search_runs(
            [registry.client.get_experiment_by_name(MONITORING_EXPERIMENT).experiment_id],
            filter_string=f"tags.`live.challenger_version` = '{better}'",
        )
        assert [run.data.metrics["labelled_pairs"] for run in runs] == [LABELLED + 20]
        assert '"labelled": 220' in registry.load_text(runs[0].info.run_id, REPORT_JSON)

        worse = register_flipped(registry, "inverted", seed=5, flip=1.0)
        registry.set_challenger(worse)
        wait_for_rollout(server.url, better, worse)  # the same server follows both aliases
        _labelled_traffic(server.url, store, better, worse, seed=2)
        _, rejected = _decide(resources)
        assert rejected["decision"] == "rejected", rejected["reason"]
        assert rejected["labelled_pairs"] == LABELLED + 20  # only requests since v{better} won
        assert "may be worse by more than 0.02 AUC" in rejected["reason"]
        assert registry.champion().version == better
        assert registry.alias_history()[-1] == event
        assert registry.version(worse).tags["live_gate.decision"] == "rejected"
        figures(
            f"\nlive gate: v{better} {promoted['auc_diff_ci']} vs v{weak} (promoted); "
            f"v{worse} {rejected['auc_diff_ci']} vs v{better} (rejected)"
        )

        monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", mlflow_uri)
        monkeypatch.setenv("CHURNOPS_MODEL_NAME", MODEL)
        monkeypatch.setenv("CHURNOPS_PREDICTION_STORE_URL", store)
        status = " ".join(CliRunner().invoke(app, ["status"]).output.split())
        assert "live comparison: 220 labelled paired requests" in status
        assert "live gate (off): recorded rejected: challenger v" in status
    finally:
        server.stop()
