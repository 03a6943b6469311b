"""`churnops status` and `churnops rollback` against a real MLflow server."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from churnops.contract import telco_contract
from churnops.data.cleaning import clean_customers
from churnops.data.synthetic import generate_customers
from churnops.model import recipes
from launcher.cli import app
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import free_port

pytestmark = pytest.mark.integration

MODEL = "churn-cli"
TELCO = telco_contract()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, mlflow_uri: str) -> MlflowModelRegistry:
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("CHURNOPS_MODEL_NAME", MODEL)
    return MlflowModelRegistry(mlflow_uri, MODEL, "cli-tests")


def test_rollback_command_moves_champion_back_and_status_shows_history(env) -> None:
    frame = clean_customers(generate_customers(2_000, seed=8), "synthetic", TELCO).frame
    model = recipes.train(frame, "logistic_regression", seed=0, contract=TELCO)
    logged = env.log_candidate("lr", model, {}, {}, contract=TELCO)
    first = env.register(logged, {})
    second = env.register(logged, {})
    runner = CliRunner()
    assert runner.invoke(app, ["rollback"]).exit_code == 1  # nothing to roll back to yet
    env.promote(first, "first")
    env.promote(second, "second")

    result = runner.invoke(app, ["rollback", "--reason", "bad metrics"])
    assert result.exit_code == 0, result.output
    assert f"version {second} → {first}" in result.output
    assert env.champion().version == first

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    assert "rollback" in status.output and "bad metrics" in status.output
    assert f"@champion: version {first} (trained on this contract)" in status.output
    assert f"data contract: telco-churn (fingerprint {TELCO.fingerprint})" in status.output
    rows = {line.split("│")[1].strip(): line for line in status.output.splitlines() if "│" in line}
    assert "champion" in rows[first] and "champion" not in rows[second]
    assert "MLflow (tracking, registry, UI)" in status.output
    assert "Prediction API (Bento)" in status.output


def test_status_names_the_unreachable_mlflow_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 1
    assert "did not answer" in result.output and "churnops up" in result.output
    assert "not reachable" in result.output


def test_an_alias_moved_through_the_rest_api_shows_up_in_status_and_rollback_refuses_first(
    monkeypatch: pytest.MonkeyPatch, mlflow_uri: str
) -> None:
    model = "churn-cli-external"
    monkeypatch.setenv("CHURNOPS_MLFLOW_TRACKING_URI", mlflow_uri)
    monkeypatch.setenv("CHURNOPS_MODEL_NAME", model)
    registry = MlflowModelRegistry(mlflow_uri, model, "cli-tests")
    frame = clean_customers(generate_customers(1_000, seed=9), "synthetic", TELCO).frame
    trained = recipes.train(frame, "logistic_regression", seed=0, contract=TELCO)
    logged = registry.log_candidate("lr", trained, {}, {}, contract=TELCO)
    first, second, third = (registry.register(logged, {}) for _ in range(3))
    registry.promote(first, "first")
    registry.promote(second, "second")
    # By hand, as the MLflow UI does: the REST call churnops never sees.
    moved = httpx.post(
        f"{mlflow_uri}/api/2.0/mlflow/registered-models/alias",
        json={"name": model, "alias": "champion", "version": third},
    )
    assert moved.status_code == 200, moved.text
    runner = CliRunner()

    refused = runner.invoke(app, ["rollback"])
    assert refused.exit_code == 1
    assert f"is on v{third} but churnops' alias history last put it on v{second}" in (
        refused.output
    )
    assert "churnops rollback --to VERSION" in refused.output
    assert registry.champion().version == third

    status = runner.invoke(app, ["status"])
    assert status.exit_code == 0, status.output
    external = [line for line in status.output.splitlines() if " external " in line]
    assert len(external) == 1, status.output
    assert f"{second} → {third} by churnops status" in external[0]
    assert "outside churnops" in external[0]
    assert [e.action for e in registry.alias_history()] == ["promote", "promote", "external"]

    back = runner.invoke(app, ["rollback", "--reason", "undo the hand move", "--by", "alice"])
    assert back.exit_code == 0, back.output
    assert f"version {third} → {second}" in back.output
    last = registry.alias_history()[-1]
    assert (last.action, last.to_version, last.by) == ("rollback", second, "alice")
