"""Every CLI command explains itself under --help (what users type first)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from launcher.cli import app

pytestmark = pytest.mark.unit

COMMANDS = {
    "up": "--no-train",
    "simulate": "--drifted",
    "rollback": "--reason",
    "status": "--check",
    "score": "--explain",
    "recover": "--yes",
}


def test_top_level_help_lists_every_command() -> None:
    result = CliRunner().invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in COMMANDS:
        assert command in result.output


@pytest.mark.parametrize(("command", "expected"), COMMANDS.items())
def test_each_command_has_help(command: str, expected: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert expected in result.output
