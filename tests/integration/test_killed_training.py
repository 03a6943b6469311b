"""A training run SIGKILLed midway (the real `dagster job execute` in a subprocess) leaves the
registry consistent: no half-registered version, and the aliases untouched unless a complete,
gated version earned them."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from launcher.stack import REPO_ROOT
from registry.interface import (
    CHALLENGER,
    CHAMPION,
    CONTRACT_DATASET_TAG,
    CONTRACT_FINGERPRINT_TAG,
)
from registry.mlflow_registry import MlflowModelRegistry
from tests.conftest import BIN
from tests.integration.pipeline import materialize_pipeline

pytestmark = pytest.mark.integration

MODEL = "churn-killed-training"
EXPERIMENT = "churn-killed-training"
# What challenger_version writes with the version, in the same create call.
LINEAGE_TAGS = {"dagster.run_id", "data.fingerprint", "git.revision", "recipe", "holdout.roc_auc"}
LINEAGE_TAGS |= {CONTRACT_FINGERPRINT_TAG, CONTRACT_DATASET_TAG}


@pytest.fixture(scope="module")
def first_champion(mlflow_uri: str) -> str:
    return materialize_pipeline(
        mlflow_uri, MODEL, synthetic_rows=5_000, experiment=EXPERIMENT
    ).output_for_node("champion_version")


def _start_training(tmp_path: Path, mlflow_uri: str) -> subprocess.Popen:
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "dagster"),
        "CHURNOPS_HOME": str(tmp_path / "state"),
        "CHURNOPS_MLFLOW_TRACKING_URI": mlflow_uri,
        "CHURNOPS_MODEL_NAME": MODEL,
        "CHURNOPS_EXPERIMENT": EXPERIMENT,
        "CHURNOPS_SYNTHETIC_ROWS": "5000",
        "CHURNOPS_SEED": "7",
    }
    (tmp_path / "dagster").mkdir()
    command = [
        str(BIN / "dagster"),
        *("job", "execute", "-m", "orchestration.definitions", "-j", "train_and_promote"),
    ]
    with (tmp_path / "training.log").open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our own CLI, no shell
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=REPO_ROOT,
            start_new_session=True,
        )


def _kill_when(proc: subprocess.Popen, happened, what: str, timeout: float = 300) -> None:
    """SIGKILL the whole process group as soon as `happened()` is true."""
    deadline = time.monotonic() + timeout
    try:
        while not happened():
            assert proc.poll() is None, f"training ended before {what}"
            assert time.monotonic() < deadline, f"no {what} after {timeout}s"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


def _aliases(registry: MlflowModelRegistry) -> dict[str, str | None]:
    return {
        alias: (info.version if (info := registry.by_alias(alias)) else None)
        for alias in (CHAMPION, CHALLENGER)
    }


@pytest.mark.parametrize("moment", ["training", "registration"])
def test_a_killed_training_run_leaves_no_half_registered_version(
    tmp_path: Path,
    mlflow_uri: str,
    first_champion: str,
    moment: str,
    figures,
) -> None:
    registry = MlflowModelRegistry(mlflow_uri, MODEL, EXPERIMENT)
    client = MlflowClient(mlflow_uri)
    experiment = client.get_experiment_by_name(EXPERIMENT).experiment_id
    runs_before = {r.info.run_id for r in client.search_runs([experiment])}
    versions_before = {v.version for v in registry.versions()}
    aliases_before = _aliases(registry)

    def new_run() -> bool:
        return bool({r.info.run_id for r in client.search_runs([experiment])} - runs_before)

    def new_version() -> bool:
        return bool({v.version for v in registry.versions()} - versions_before)

    proc = _start_training(tmp_path, mlflow_uri)
    if moment == "training":
        # The candidate's MLflow run opens once training is done, while the model is logged.
        _kill_when(proc, new_run, "MLflow run")
    else:
        _kill_when(proc, new_version, "new model version")
    assert proc.returncode == -signal.SIGKILL

    versions = registry.versions()
    new = [v for v in versions if v.version not in versions_before]
    for version in versions:
        missing = LINEAGE_TAGS - set(version.tags)
        assert not missing, f"version {version.version} lacks {missing}"
    aliases = _aliases(registry)
    figures(f"\nkilled during {moment}: new versions {[v.version for v in new]}, aliases {aliases}")
    if moment == "training":
        assert new == [] and aliases == aliases_before
        orphan = next(
            r for r in client.search_runs([experiment]) if r.info.run_id not in runs_before
        )
        assert orphan.info.status != "FINISHED"  # killed mid-logging, and never registered
    else:
        assert len(new) == 1
        assert aliases[CHALLENGER] in (aliases_before[CHALLENGER], new[0].version)
        if aliases[CHAMPION] != aliases_before[CHAMPION]:  # only a gated, recorded promotion
            champion = registry.version(aliases[CHAMPION])
            assert champion.tags.get("gate.decision") == "promoted"
            assert any(k.startswith("churnops.alias_event.champion") for k in champion.tags)
