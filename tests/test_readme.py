"""The README documents every setting in one table, and `.ci/run` runs the README's test command."""

from __future__ import annotations

import re

import pytest

from churnops.settings import ENV_PREFIX, Settings
from launcher.stack import REPO_ROOT

pytestmark = pytest.mark.unit

README = (REPO_ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table_with_its_default() -> None:
    rows = dict(re.findall(r"^\| `(CHURNOPS_[A-Z_]+)` \| `([^`]*)` \|", README, re.MULTILINE))
    expected = {
        f"{ENV_PREFIX}{name.upper()}": str(field.default)
        for name, field in Settings.model_fields.items()
    }
    assert rows == expected


def test_ci_runs_the_readme_test_command() -> None:
    assert "./dev test" in README
    ci = (REPO_ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "exec ./dev test"
