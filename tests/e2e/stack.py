"""Run `churnops up` as a subprocess for e2e tests and talk to its Dagster over GraphQL."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from launcher.credentials import TRAINING, read_credentials
from launcher.stack import REPO_ROOT
from tests.conftest import free_port

BIN = Path(sys.executable).parent
LOCATION = "orchestration.definitions"

TICKS_QUERY = """
query Ticks($selector: SensorSelector!) {
  sensorOrError(sensorSelector: $selector) {
    __typename
    ... on Sensor { sensorState { ticks(limit: 50) { status skipReason runIds timestamp } } }
  }
}
"""

STEPS_QUERY = """
query Steps($runId: ID!) {
  runOrError(runId: $runId) { ... on Run { stepStats { stepKey status } } }
}
"""

RUNS_QUERY = """
query Runs($job: String!) {
  runsOrError(filter: {pipelineName: $job}) {
    ... on Runs { results { runId status tags { key value } } }
  }
}
"""


@dataclass
class RunningStack:
    proc: subprocess.Popen
    log: Path
    bento: str
    mlflow: str
    dagster: str
    env: dict[str, str]  # what `churnops up` ran with: the same for other CLI commands
    home: Path  # CHURNOPS_HOME, where `churnops up` keeps MLflow's passwords

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def mlflow_login(self, user: str = TRAINING) -> tuple[str, str]:
        """A (username, password) MLflow's auth app accepts, as `churnops up` generated it."""
        credentials = read_credentials(self.home)
        assert credentials is not None, f"no MLflow credentials in {self.home}"
        return user, credentials.password(user)

    def log_in(self, monkeypatch: pytest.MonkeyPatch, user: str = TRAINING) -> None:
        """This test's MLflow clients log in as `user` (the standard MLFLOW_TRACKING_* way)."""
        username, password = self.mlflow_login(user)
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)

    def graphql(self, query: str, variables: dict) -> dict:
        response = httpx.post(
            f"{self.dagster}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        return response.json()["data"]

    def sensor_ticks(self, sensor: str) -> list[dict]:
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "sensorName": sensor,
        }
        data = self.graphql(TICKS_QUERY, {"selector": selector})["sensorOrError"]
        assert data["__typename"] == "Sensor", data
        return data["sensorState"]["ticks"]

    def runs(self, job: str) -> list[dict]:
        return self.graphql(RUNS_QUERY, {"job": job})["runsOrError"]["results"]

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)  # what Ctrl-C sends
        return self.proc.wait(timeout=180)

    def crash(self) -> None:
        """SIGKILL `churnops up` and every process below it at once (each service runs in a
        session of its own, so the tree is walked, not a process group signalled)."""
        root = psutil.Process(self.proc.pid)
        tree = [root, *root.children(recursive=True)]
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(tree, timeout=30)
        self.proc.wait(timeout=30)

    def step_status(self, run_id: str) -> dict[str, str]:
        run = self.graphql(STEPS_QUERY, {"runId": run_id})["runOrError"]
        return {step["stepKey"]: step["status"] for step in run.get("stepStats") or []}


def start_stack(
    tmp_path: Path,
    timeout: float = 480,
    up_args: tuple[str, ...] = (),
    log_name: str = "up.log",
    wait_up: bool = True,
    ports: dict[str, int] | None = None,
    **settings: str,
) -> RunningStack:
    ports = ports or {name: free_port() for name in ("MLFLOW", "DAGSTER", "BENTO")}
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("CHURNOPS_")
        and key not in ("DAGSTER_HOME", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    }
    env.update(
        {
            "CHURNOPS_HOME": str(tmp_path / "state"),
            **{f"CHURNOPS_{name}_PORT": str(port) for name, port in ports.items()},
            **{f"CHURNOPS_{key.upper()}": value for key, value in settings.items()},
        }
    )
    log = tmp_path / log_name
    with log.open("wb") as out:
        proc = subprocess.Popen(  # noqa: S603 - our own CLI from this venv
            [str(BIN / "churnops"), "up", *up_args],
            cwd=REPO_ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    stack = RunningStack(
        proc,
        log,
        bento=f"http://127.0.0.1:{ports['BENTO']}",
        mlflow=f"http://127.0.0.1:{ports['MLFLOW']}",
        dagster=f"http://127.0.0.1:{ports['DAGSTER']}",
        env=env,
        home=Path(env["CHURNOPS_HOME"]),
    )
    if not wait_up:
        return stack
    deadline = time.monotonic() + timeout
    while "churnops is up" not in stack.output():
        if proc.poll() is not None or time.monotonic() > deadline:
            stack.stop()
            raise AssertionError(f"churnops up did not come up:\n{stack.output()[-4000:]}")
        time.sleep(1)
    return stack


def wait_for(predicate, timeout: float, what: str, stack: RunningStack, every: float = 1.0):
    """The predicate's first truthy value; fails at once if `churnops up` died, with its log."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert stack.proc.poll() is None, stack.output()[-4000:]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(every)
