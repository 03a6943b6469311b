"""The README's run command: `churnops up` from nothing to a served champion, then Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from churnops.contract import example_record
from churnops.stack import REPO_ROOT
from tests.conftest import free_port

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent


def test_up_serves_the_champion_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("MLFLOW", "DAGSTER", "BENTO")}
    env = {
        **os.environ,
        "CHURNOPS_HOME": str(tmp_path / "state"),
        "CHURNOPS_SYNTHETIC_ROWS": "20000",
        "CHURNOPS_ALIAS_POLL_SECONDS": "2",
        **{f"CHURNOPS_{name}_PORT": str(port) for name, port in ports.items()},
    }
    for key in ("CHURNOPS_MLFLOW_TRACKING_URI", "CHURNOPS_MODEL_URI", "CHURNOPS_DATA_PATH"):
        env.pop(key, None)
    log = (tmp_path / "up.log").open("wb")
    proc = subprocess.Popen(
        [str(BIN / "churnops"), "up"],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    bento = f"http://127.0.0.1:{ports['BENTO']}"
    mlflow = f"http://127.0.0.1:{ports['MLFLOW']}"
    dagster = f"http://127.0.0.1:{ports['DAGSTER']}"
    try:
        deadline = time.monotonic() + 480
        while "churnops is up" not in (tmp_path / "up.log").read_text(errors="replace"):
            assert proc.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
            assert time.monotonic() < deadline, (tmp_path / "up.log").read_text()[-3000:]
            time.sleep(1)

        prediction = httpx.post(f"{bento}/predict", json={"customer": example_record()}).json()
        alias = httpx.get(
            f"{mlflow}/api/2.0/mlflow/registered-models/alias",
            params={"name": "churn", "alias": "champion"},
        ).json()
        assert 0.0 <= prediction["churn_probability"] <= 1.0
        assert prediction["model_version"] == alias["model_version"]["version"]
        assert httpx.get(f"{dagster}/server_info").status_code == 200
        assert httpx.get(f"{mlflow}/health").status_code == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C sends
        code = proc.wait(timeout=90)
        log.close()
    assert code == 0, (tmp_path / "up.log").read_text()[-3000:]
    for url in (bento, mlflow, dagster):
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, timeout=2)
