"""MLflow's auth app as `churnops up` runs it: a real `mlflow server --app-name basic-auth` with
the accounts provisioned over its REST API, and what each login may do to the registry."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from launcher.credentials import (
    ADMIN,
    SERVING,
    TRAINING,
    Credentials,
    credentials_path,
    ensure_credentials,
)
from launcher.mlflow_auth import churnops_experiments, provision_accounts
from launcher.mlflow_server import local_mlflow_server
from launcher.stack import BIN
from registry.mlflow_registry import MlflowModelRegistry

pytestmark = pytest.mark.integration

MODEL = "churn"
EXPERIMENT = "churn-training"
REST = "/api/2.0/mlflow"


@dataclass
class AuthServer:
    url: str
    state: Path
    credentials: Credentials
    version: str  # registered by the training account, holds @champion

    def auth(self, user: str) -> tuple[str, str]:
        return user, self.credentials.password(user)


def _log_in(monkeypatch: pytest.MonkeyPatch, server: AuthServer, user: str) -> MlflowClient:
    """An MlflowClient logged in the standard way: MLFLOW_TRACKING_USERNAME/PASSWORD."""
    for name, value in server.credentials.login_env(user).items():
        monkeypatch.setenv(name, value)
    return MlflowClient(server.url)


def _register(client: MlflowClient, tmp: Path) -> str:
    """What training does: a run with a file in the training experiment, a new version of it."""
    experiment = client.get_experiment_by_name(EXPERIMENT)
    run = client.create_run(experiment.experiment_id, run_name="auth-test")
    (tmp / "model.txt").write_text("weights")
    client.log_artifact(run.info.run_id, str(tmp / "model.txt"), "model")
    client.set_terminated(run.info.run_id)
    return client.create_model_version(
        MODEL, f"{run.info.artifact_uri}/model", run.info.run_id
    ).version


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    state = tmp_path_factory.mktemp("auth-state")
    credentials, created = ensure_credentials(state)
    assert created
    url, process = local_mlflow_server(state / "mlflow", credentials=credentials)
    with process, pytest.MonkeyPatch.context() as monkeypatch:
        passwords = {user: credentials.password(user) for user in (TRAINING, SERVING)}
        server_admin = (ADMIN, credentials.admin_password)
        first = provision_accounts(
            url, server_admin, passwords, MODEL, churnops_experiments(EXPERIMENT)
        )
        again = provision_accounts(
            url, server_admin, passwords, MODEL, churnops_experiments(EXPERIMENT)
        )
        assert first and again == []  # idempotent: nothing left to change the second time
        running = AuthServer(url, state, credentials, "")
        for user in (TRAINING, SERVING):  # a fresh stack: "no champion yet", not 403
            _log_in(monkeypatch, running, user)
            assert MlflowModelRegistry(url, MODEL, EXPERIMENT).champion() is None
        training = _log_in(monkeypatch, running, TRAINING)
        running.version = _register(training, tmp_path_factory.mktemp("artifacts"))
        training.set_registered_model_alias(MODEL, "champion", running.version)
        yield running


def _move_alias(server: AuthServer, auth: tuple[str, str] | None) -> httpx.Response:
    body = {"name": MODEL, "alias": "champion", "version": server.version}
    return httpx.post(f"{server.url}{REST}/registered-models/alias", json=body, auth=auth)


def _delete_version(server: AuthServer, auth: tuple[str, str] | None) -> httpx.Response:
    body = {"name": MODEL, "version": server.version}
    return httpx.request(
        "DELETE", f"{server.url}{REST}/model-versions/delete", json=body, auth=auth
    )


def test_the_health_check_is_open_and_everything_else_needs_a_login(server: AuthServer) -> None:
    assert httpx.get(f"{server.url}/health").status_code == 200
    assert _move_alias(server, None).status_code == 401
    assert _delete_version(server, None).status_code == 401
    wrong = (TRAINING, "not-the-password")
    assert _move_alias(server, wrong).status_code == 401


def test_the_serving_account_cannot_move_aliases_or_delete_versions(server: AuthServer) -> None:
    assert _move_alias(server, server.auth(SERVING)).status_code == 403
    assert _delete_version(server, server.auth(SERVING)).status_code == 403
    alias = httpx.get(
        f"{server.url}{REST}/registered-models/alias",
        params={"name": MODEL, "alias": "champion"},
        auth=server.auth(SERVING),
    )
    assert alias.json()["model_version"]["version"] == server.version


def test_a_missing_alias_is_not_found_rather_than_forbidden(
    server: AuthServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The model exists from the start (provisioning creates it), so "no such alias" reads as
    404, which the registry code takes for "no champion yet"."""
    for user in (TRAINING, SERVING):
        client = _log_in(monkeypatch, server, user)
        with pytest.raises(mlflow.MlflowException) as missing:
            client.get_model_version_by_alias(MODEL, "nobody")
        assert missing.value.error_code != "PERMISSION_DENIED"
        assert MlflowModelRegistry(server.url, MODEL, EXPERIMENT).by_alias("nobody") is None


def test_the_serving_account_reads_the_model_and_downloads_its_files(
    server: AuthServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = _log_in(monkeypatch, server, SERVING)
    champion = client.get_model_version_by_alias(MODEL, "champion")
    assert champion.version == server.version
    assert [v.version for v in client.search_model_versions(f"name = '{MODEL}'")] == [
        server.version
    ]
    local = mlflow.artifacts.download_artifacts(
        run_id=champion.run_id,
        artifact_path="model",
        dst_path=str(tmp_path),
        tracking_uri=server.url,
    )
    assert (Path(local) / "model.txt").read_text() == "weights"


def test_the_training_account_registers_versions_and_moves_aliases(
    server: AuthServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    client = _log_in(monkeypatch, server, TRAINING)
    version = _register(client, tmp_path)
    client.set_registered_model_alias(MODEL, "challenger", version)
    client.set_model_version_tag(MODEL, version, "gate.decision", "promote")
    client.set_registered_model_alias(MODEL, "champion", version)
    client.delete_registered_model_alias(MODEL, "challenger")  # what a promotion does
    assert client.get_model_version_by_alias(MODEL, "champion").version == version
    assert "challenger" not in client.get_registered_model(MODEL).aliases
    client.set_registered_model_alias(MODEL, "champion", server.version)  # a rollback
    assert _delete_version(server, server.auth(TRAINING)).status_code == 403


def test_the_credentials_file_is_readable_by_its_owner_only(server: AuthServer) -> None:
    path = credentials_path(server.state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(server.state.stat().st_mode) == 0o700
    again, created = ensure_credentials(server.state)
    assert (again, created) == (server.credentials, False)


def test_the_accounts_job_command_sets_new_passwords_and_refuses_missing_ones(
    server: AuthServer, tmp_path: Path
) -> None:
    """`churnops mlflow-accounts`, what the compose and Kubernetes jobs run: a changed password
    in the Secret is applied to the account (the module's last test: it keeps the new one)."""
    new_serving = "rotated-" + server.credentials.serving_password[:12]
    env = {
        **os.environ,
        "CHURNOPS_MLFLOW_TRACKING_URI": server.url,
        "CHURNOPS_HOME": str(tmp_path),
        "MLFLOW_TRACKING_USERNAME": ADMIN,
        "MLFLOW_TRACKING_PASSWORD": server.credentials.admin_password,
        "CHURNOPS_MLFLOW_TRAINING_PASSWORD": server.credentials.training_password,
        "CHURNOPS_MLFLOW_SERVING_PASSWORD": new_serving,
    }
    command = [str(BIN / "churnops"), "mlflow-accounts", "--wait", "30"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"accounts {TRAINING} and {SERVING} ready" in " ".join(done.stdout.split())
    search = f"{server.url}{REST}/registered-models/search"
    assert httpx.get(search, auth=(SERVING, new_serving)).status_code == 200
    assert httpx.get(search, auth=server.auth(SERVING)).status_code == 401
    del env["CHURNOPS_MLFLOW_SERVING_PASSWORD"]
    missing = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)  # noqa: S603
    assert missing.returncode == 2 and "churnops-serving password" in missing.stdout
