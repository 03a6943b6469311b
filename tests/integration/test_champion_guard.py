"""Automatic revert against real MLflow and Bento servers: a promoted champion that cannot
load is refused by serving, the champion guard sensor (evaluated by Dagster) requests the
revert, the `revert_champion` job moves `@champion` back with the reason in the history, and
serving never answers from the broken version."""

from __future__ import annotations

import time
from pathlib import Path

import dagster as dg
import httpx
import pytest
from typer.testing import CliRunner

from churnops.settings import Settings
from launcher.cli import app
from orchestration.definitions import build_resources
from orchestration.guard import build_guard_sensor, revert_champion
from orchestration.resources import ServingEndpoint
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import start_bento, wait_ready
from tests.integration.pipeline import materialize_pipeline
from tests.integration.test_broken_version import Traffic, corrupted_version, wait_refused

pytestmark = pytest.mark.integration

MODEL = "churn-guarded"
SENSOR = build_guard_sensor(revert_champion, interval_seconds=15)


def test_a_champion_serving_refuses_is_reverted_by_itself_and_never_answers(
    tmp_path: Path, mlflow_uri: str, monkeypatch: pytest.MonkeyPatch, figures
) -> None:
    good = materialize_pipeline(mlflow_uri, MODEL, synthetic_rows=5_000).output_for_node(
        "champion_version"
    )
    registry = MlflowModelRegistry(mlflow_uri, MODEL, "churn-training")
    server = start_bento(tmp_path, mlflow_uri, MODEL)
    settings = Settings(
        mlflow_tracking_uri=mlflow_uri,
        model_name=MODEL,
        prediction_store_url=f"sqlite:///{tmp_path / 'guard-store.db'}",
    )
    resources = {
        **build_resources(settings),
        "serving": ServingEndpoint(status_url=f"{server.url}/model"),
    }

    def tick():
        with dg.build_sensor_context(resources=resources) as context:
            return SENSOR(context)

    try:
        wait_ready(server)
        quiet = tick()
        assert "watching champion v" in quiet.skip_message
        with Traffic(server.url) as traffic:
            broken = corrupted_version(registry, tmp_path)
            registry.promote(broken, "test: a release whose artifact is garbage", by="gate")
            refused = wait_refused(server, broken)
            assert refused["model_version"] == good

            request = tick()
            assert isinstance(request, dg.RunRequest), request
            assert request.run_key.startswith(f"revert-v{broken}-")
            reason = request.run_config["ops"]["revert_version"]["config"]["reason"]
            assert reason.startswith(f"serving refused champion v{broken}: ")
            run = revert_champion.execute_in_process(
                run_config=request.run_config, resources=resources
            )
            assert run.success and run.output_for_node("revert_version") == good
            assert registry.champion().version == good

            deadline = time.monotonic() + 60
            while httpx.get(f"{server.url}/model").json()["refused_version"] is not None:
                assert time.monotonic() < deadline, "serving never dropped the refusal"
                time.sleep(0.5)
        figures(f"\nguarded revert: answers during the fault {dict(traffic.seen)}")
        assert set(traffic.seen) == {(200, good)}, traffic.seen
        assert sum(traffic.seen.values()) >= 20

        last = registry.alias_history()[-1]
        assert (last.action, last.from_version, last.to_version) == ("revert", broken, good)
        assert last.by == "champion_guard" and last.reason == reason
        again = tick()  # a version put back by a revert is not watched: no revert loop
        assert "put back by a rollback: not watched" in again.skip_message
        replay = revert_champion.execute_in_process(
            run_config=request.run_config, resources=resources
        )
        assert replay.output_for_node("revert_version") == good  # a stale request moves nothing
        assert registry.alias_history()[-1] == last

        monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", mlflow_uri)
        monkeypatch.setenv("CHURNOPS_MODEL_NAME", MODEL)
        status = CliRunner().invoke(app, ["status"])
        line = next(row for row in status.output.splitlines() if " revert " in row)
        assert f"{broken} → {good} by champion_guard" in line
        assert f"serving refused champion v{broken}" in line
    finally:
        server.stop()
