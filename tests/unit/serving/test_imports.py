"""What the serving worker loads: no plotting, and no scipy.stats pulled in by our own code.

Run in a fresh interpreter (a subprocess: this test process has long imported everything); it
touches no network, so it stays with the unit tests.

scipy.stats itself still arrives with scikit-learn (`sklearn.utils.fixes` imports it, and the
worker needs sklearn to run the model); what must not happen is one of our modules importing it
or matplotlib for a constant, as `evaluation.py` did for DECISION_THRESHOLD.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

REPO_ROOT = Path(__file__).resolve().parents[3]
OUR_PACKAGES = ("churnops", "registry", "serving")

# Every import statement naming scipy or matplotlib, with the module that ran it (already loaded
# or not: `__import__` sees each statement, an import hook only the first load).
PROBE = """
import builtins, json, sys

original_import = builtins.__import__
importers = {}

def recording_import(name, globals=None, locals=None, fromlist=(), level=0):
    if level == 0 and name.split(".")[0] in ("matplotlib", "scipy"):
        caller = (globals or {}).get("__name__", "?")
        for imported in [name] + [f"{name}.{item}" for item in fromlist or ()]:
            importers.setdefault(imported, set()).add(caller)
    return original_import(name, globals, locals, fromlist, level)

builtins.__import__ = recording_import
for module in sys.argv[1:]:
    __import__(module)

print(json.dumps({
    "modules": sorted(sys.modules),
    "importers": {name: sorted(callers) for name, callers in importers.items()},
}))
"""


def _imports(*modules: str) -> dict:
    # Our own interpreter and a fixed script: no shell, no user input.
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", PROBE, *modules],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def serving_imports() -> dict:
    """What a worker loads: the service module, then its runtime (ChurnService.__init__)."""
    return _imports("serving.service", "serving.runtime")


def test_the_serving_worker_does_not_load_matplotlib(serving_imports: dict) -> None:
    assert {"serving.service", "serving.runtime"} <= set(serving_imports["modules"])
    plotting = [name for name in serving_imports["modules"] if name.startswith("matplotlib")]
    assert plotting == []


def test_no_module_of_ours_imports_scipy_or_matplotlib(serving_imports: dict) -> None:
    importers = serving_imports["importers"]
    assert "sklearn.utils.fixes" in importers["scipy.stats"]  # the probe sees sklearn's import
    from_our_code = {
        (name, caller)
        for name, callers in importers.items()
        for caller in callers
        if caller.split(".")[0] in OUR_PACKAGES
    }
    assert from_our_code == set()


def test_the_supervisor_imports_the_service_without_the_model_stack() -> None:
    """BentoML's supervisor imports serving.service only for its configuration: scikit-learn,
    pandas, MLflow and SQLAlchemy load in the worker (serving/runtime.py), not there."""
    loaded = {name.split(".")[0] for name in _imports("serving.service")["modules"]}
    assert "bentoml" in loaded
    assert loaded & {"sklearn", "pandas", "mlflow", "sqlalchemy", "scipy", "skops"} == set()


def test_the_serving_worker_does_not_load_optuna(serving_imports: dict) -> None:
    """Search spaces live in the recipe registry serving loads; optuna stays with training."""
    assert [name for name in serving_imports["modules"] if name.startswith("optuna")] == []
