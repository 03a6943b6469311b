"""How `churnops up` sets MLflow's auth app up: stored passwords, the one-time admin notice, the
config file, and which login each process gets (no process started)."""

from __future__ import annotations

import configparser
import stat
from pathlib import Path

import pytest

from churnops.settings import Settings
from launcher.credentials import (
    ADMIN,
    SERVING,
    TRAINING,
    admin_notice,
    credentials_path,
    ensure_credentials,
    use_stored_login,
)
from launcher.mlflow_auth import account_grants, auth_ini, server_env
from launcher.mlflow_server import local_mlflow_server
from launcher.processes import ManagedProcess
from launcher.stack import Stack

pytestmark = pytest.mark.unit


def test_passwords_are_generated_once_into_an_owner_only_file(tmp_path: Path) -> None:
    state = tmp_path / "state"
    first, created = ensure_credentials(state)
    again, created_again = ensure_credentials(state)
    assert (created, created_again) == (True, False)
    assert again == first
    assert len({first.admin_password, first.training_password, first.serving_password}) == 3
    assert stat.S_IMODE(credentials_path(state).stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


def test_a_loosened_credentials_file_is_tightened_again(tmp_path: Path) -> None:
    ensure_credentials(tmp_path)
    credentials_path(tmp_path).chmod(0o644)
    ensure_credentials(tmp_path)
    assert stat.S_IMODE(credentials_path(tmp_path).stat().st_mode) == 0o600


def test_the_admin_password_is_shown_on_the_first_start_only(tmp_path: Path) -> None:
    credentials, created = ensure_credentials(tmp_path)
    first = admin_notice(credentials, created, tmp_path)
    assert first is not None
    assert credentials.admin_password in first
    assert str(credentials_path(tmp_path)) in first
    assert admin_notice(*ensure_credentials(tmp_path), tmp_path) is None


def test_cli_commands_log_in_as_training_unless_a_login_is_given(tmp_path: Path) -> None:
    credentials, _ = ensure_credentials(tmp_path)
    environ: dict[str, str] = {}
    assert use_stored_login(tmp_path, environ)
    assert environ == credentials.login_env(TRAINING)
    chosen = {"MLFLOW_TRACKING_USERNAME": "alice"}
    assert not use_stored_login(tmp_path, chosen)
    assert chosen == {"MLFLOW_TRACKING_USERNAME": "alice"}
    nothing_stored: dict[str, str] = {}
    assert not use_stored_login(tmp_path / "elsewhere", nothing_stored)
    assert nothing_stored == {}


def test_the_auth_config_keeps_users_beside_the_store_and_caches_logins(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path)
    config = configparser.ConfigParser()
    config.read_string(auth_ini(settings.auth_database_uri))
    section = config["mlflow"]
    assert section["default_permission"] == "READ"
    assert section["admin_username"] == ADMIN
    assert section["database_uri"] == f"sqlite:///{tmp_path / 'mlflow' / 'auth.db'}"
    assert settings.backend_store_uri == f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    assert section["auth_cache_ttl_seconds"] == "60"
    assert "admin_password" not in section  # it comes from the environment, never the file


def test_an_auth_server_runs_the_basic_auth_app_with_its_secrets(tmp_path: Path) -> None:
    credentials, _ = ensure_credentials(tmp_path)
    server = local_mlflow_server(tmp_path, 5999, {}, credentials)[1]
    assert server.command[server.command.index("--app-name") + 1] == "basic-auth"
    expected = server_env(tmp_path / "auth.ini", credentials)
    assert {key: server.env[key] for key in expected} == expected
    assert (tmp_path / "auth.ini").is_file()
    assert "--app-name" not in local_mlflow_server(tmp_path, 5999, {})[1].command


def test_training_may_manage_the_model_but_only_edit_versions_and_serving_only_reads() -> None:
    grants = {
        (g.username, g.resource_type, g.resource_id): g.permission
        for g in account_grants("m", ["7"])
    }
    assert grants == {
        (TRAINING, "registered_model", "m"): "MANAGE",
        (TRAINING, "registered_model_version", "*"): "EDIT",
        (TRAINING, "experiment", "7"): "EDIT",
        (SERVING, "registered_model", "m"): "READ",
        (SERVING, "experiment", "7"): "READ",
    }


def test_dagster_logs_in_as_training_and_bento_as_serving(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[ManagedProcess] = []
    monkeypatch.setattr(Stack, "_start", lambda _, process, timeout: started.append(process))
    stack = Stack(Settings(home=tmp_path))
    stack.credentials, _ = ensure_credentials(tmp_path)
    stack.start_dagster()
    stack.start_bento()
    logins = {p.name: p.env["MLFLOW_TRACKING_USERNAME"] for p in started}
    assert logins == {
        "dagster-code-server": TRAINING,
        "dagster-webserver": TRAINING,
        "dagster-daemon": TRAINING,
        "bento": SERVING,
    }
    bento = started[-1].env
    assert bento["MLFLOW_TRACKING_PASSWORD"] == stack.credentials.serving_password
