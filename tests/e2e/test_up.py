"""The README's run command: `churnops up` from nothing to a served champion, then Ctrl-C."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import dagster as dg
import httpx
import pytest

from churnops.contract import telco_contract
from launcher.credentials import SERVING, credentials_path
from launcher.recovery import open_instance
from tests.e2e.stack import BIN, RunningStack, start_stack

pytestmark = pytest.mark.e2e

TELCO = telco_contract()
example_record = TELCO.example_record


def _status_check(stack: RunningStack, **settings: str) -> subprocess.CompletedProcess:
    env = {**stack.env, **{f"CHURNOPS_{k.upper()}": v for k, v in settings.items()}}
    return subprocess.run(  # noqa: S603 - our own CLI
        [str(BIN / "churnops"), "status", "--check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _status_check_says_stuck_then_healthy(stack: RunningStack, tmp_path: Path) -> None:
    """A retraining run stuck in flight (as a crash leaves one) makes `status --check` exit 1
    naming it; once it is failed, 0."""
    healthy = _status_check(stack)
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "monitoring is healthy" in healthy.stdout
    with open_instance(tmp_path / "state" / "dagster") as instance:
        stuck = dg.DagsterRun(job_name="retrain_on_drift", status=dg.DagsterRunStatus.STARTED)
        instance.add_run(stuck)
        time.sleep(2)
        blocked = _status_check(stack, retrain_timeout_seconds="1")
        assert blocked.returncode == 1, blocked.stdout
        said = " ".join(blocked.stdout.split())
        assert f"retraining run {stuck.run_id} is stuck STARTED" in said
        instance.report_run_failed(stuck, "failed by the test")
    again = _status_check(stack, retrain_timeout_seconds="1")
    assert again.returncode == 0, again.stdout


def test_up_serves_the_champion_and_stops_cleanly(tmp_path: Path) -> None:
    stack = start_stack(tmp_path, synthetic_rows="20000", alias_poll_seconds="2")
    try:
        prediction = httpx.post(f"{stack.bento}/predict", json={"customer": example_record()})
        alias_url = f"{stack.mlflow}/api/2.0/mlflow/registered-models/alias"
        params = {"name": "churn", "alias": "champion"}
        alias = httpx.get(alias_url, params=params, auth=stack.mlflow_login(SERVING))
        assert httpx.get(alias_url, params=params).status_code == 401  # MLflow's auth app
        said = " ".join(stack.output().split())
        assert (
            f"kept with the service accounts' passwords in {credentials_path(stack.home)}" in said
        )
        assert 0.0 <= prediction.json()["churn_probability"] <= 1.0
        assert prediction.json()["model_version"] == alias.json()["model_version"]["version"]
        assert httpx.get(f"{stack.dagster}/server_info").status_code == 200
        assert httpx.get(f"{stack.mlflow}/health").status_code == 200
        _status_check_says_stuck_then_healthy(stack, tmp_path)
    finally:
        code = stack.stop()
    assert code == 0, stack.output()[-3000:]
    for url in (stack.bento, stack.mlflow, stack.dagster):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
