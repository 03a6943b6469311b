"""The `mlflow server` command line and environment churnops launches (no process started)."""

from __future__ import annotations

from pathlib import Path

import pytest

from launcher.mlflow_server import local_mlflow_server

pytestmark = pytest.mark.unit


def _server(tmp_path: Path, env: dict[str, str] | None = None):
    return local_mlflow_server(tmp_path, 5999, env)[1]


def _option(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_server_keeps_everything_under_its_root_on_loopback(tmp_path: Path) -> None:
    server = _server(tmp_path)
    assert _option(server.command, "--backend-store-uri") == f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert _option(server.command, "--artifacts-destination") == str(tmp_path / "artifacts")
    assert (_option(server.command, "--host"), _option(server.command, "--port")) == (
        "127.0.0.1",
        "5999",
    )


def test_server_proxies_artifacts_and_skips_the_genai_job_runner(tmp_path: Path) -> None:
    server = _server(tmp_path, env={"CHURNOPS_HOME": "/state"})
    assert "--serve-artifacts" in server.command
    assert server.env == {"CHURNOPS_HOME": "/state", "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    assert server.health_url == "http://127.0.0.1:5999/health"
    assert (tmp_path / "artifacts").is_dir()


def test_job_runner_can_be_asked_for(tmp_path: Path) -> None:
    server = _server(tmp_path, env={"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true"})
    assert server.env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "true"
