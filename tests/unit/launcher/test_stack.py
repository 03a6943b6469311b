"""The local stack's Dagster wiring: one code server that the webserver and daemon share."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from churnops.settings import Settings
from launcher.processes import ManagedProcess
from launcher.stack import (
    CODE_LOCATION,
    CODE_SERVER_HOST,
    Stack,
    code_server_command,
    code_server_workspace,
)
from tests.e2e.stack import LOCATION

pytestmark = pytest.mark.unit


def _option(command: list[str], flag: str) -> str:
    return command[command.index(flag) + 1]


def test_the_workspace_points_at_the_code_server_under_the_location_name_runs_use() -> None:
    workspace = yaml.safe_load(code_server_workspace(41234))
    assert workspace == {
        "load_from": [
            {"grpc_server": {"host": "127.0.0.1", "port": 41234, "location_name": LOCATION}}
        ]
    }


def test_the_code_server_serves_the_definitions_on_loopback_under_the_same_name() -> None:
    command = code_server_command(41234)
    assert command[1:3] == ["code-server", "start"]
    assert _option(command, "-m") == "orchestration.definitions"
    assert _option(command, "--location-name") == CODE_LOCATION == LOCATION
    assert (_option(command, "-h"), _option(command, "-p")) == (CODE_SERVER_HOST, "41234")


def test_the_code_server_stays_on_loopback_when_the_uis_listen_everywhere(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    started: list[ManagedProcess] = []
    monkeypatch.setattr(Stack, "_start", lambda _, process, timeout: started.append(process))
    settings = Settings(home=tmp_path, host="0.0.0.0")  # noqa: S104 - the case under test
    Stack(settings).start_dagster()

    names = [process.name for process in started]
    assert names == ["dagster-code-server", "dagster-webserver", "dagster-daemon"]
    code_server, webserver, daemon = started
    port = _option(code_server.command, "-p")
    assert _option(code_server.command, "-h") == "127.0.0.1"
    workspace_path = Path(_option(webserver.command, "-w"))
    assert _option(daemon.command, "-w") == str(workspace_path)
    workspace = yaml.safe_load(workspace_path.read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == int(port)
    assert code_server.ready is not None  # start() waits until the definitions are served
    assert "orchestration.definitions" not in " ".join(webserver.command + daemon.command)
