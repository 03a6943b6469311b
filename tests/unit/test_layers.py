"""The layer contracts in pyproject.toml hold for the code, and would catch a forbidden import.

`lint-imports` builds the import graph from the packages on `sys.path`, so each check runs it on
a copy of the packages: the real tree, then the same tree with one forbidden import planted.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PACKAGES = ("churnops", "registry", "orchestration", "serving", "launcher")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _tree(tmp_path: Path) -> Path:
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(  # noqa: S603 - our own venv's lint-imports on a temporary tree
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _plant(tree: Path, module: str, line: str) -> None:
    path = tree / module
    path.write_text(f"{line}\n{path.read_text()}")


def test_the_code_keeps_every_layer_contract(tmp_path: Path) -> None:
    result = _lint(_tree(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        # The domain core reaching up into the registry (the old hidden loop).
        ("churnops/contract/schema.py", "import registry.history", "Layers:"),
        # ... or into plotting, inside a function, where the old cycles hid.
        (
            "churnops/model/gate.py",
            "def _plot():\n    import matplotlib.pyplot",
            "The domain core imports no",
        ),
        # Serving and orchestration stay independent of each other.
        ("serving/batcher.py", "import orchestration.jobs", "Layers:"),
        # The registry talks MLflow, not Dagster.
        ("registry/history.py", "import dagster", "The registry is MLflow only"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    tree = _tree(tmp_path)
    _plant(tree, module, line)
    result = _lint(tree)
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout
    broken_section = result.stdout.split("Broken contracts")[-1]
    assert contract in broken_section, result.stdout
