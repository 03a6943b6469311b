"""Fixtures shared by the integration and e2e layers: real servers on free loopback ports."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from launcher.mlflow_server import local_mlflow_server
from launcher.processes import ManagedProcess, free_port
from launcher.stack import REPO_ROOT, bento_command

BIN = Path(sys.executable).parent


def restartable_mlflow(root: Path) -> tuple[str, Callable[[], ManagedProcess]]:
    """The URL and a factory of an `mlflow server` on one fixed port and store, so a test can
    stop it (an outage) and start it again with everything it held."""
    port = free_port()
    return f"http://127.0.0.1:{port}", lambda: local_mlflow_server(root, port)[1]


@pytest.fixture(scope="session")
def mlflow_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` (SQLite + proxied local artifacts) for the whole session."""
    url, server = local_mlflow_server(tmp_path_factory.mktemp("mlflow"))
    with server:
        yield url


@dataclass
class BentoServer:
    process: ManagedProcess
    url: str

    def stop(self) -> None:
        self.process.stop()


def start_bento(
    tmp_path: Path, tracking_uri: str, model_name: str, **extra_env: str
) -> BentoServer:
    """`bentoml serve` of our service as a subprocess, polling the alias every second."""
    port = free_port()
    env = {
        **os.environ,
        "CHURNOPS_MLFLOW_TRACKING_URI": tracking_uri,
        "CHURNOPS_MODEL_NAME": model_name,
        "CHURNOPS_ALIAS_POLL_SECONDS": "1",
        "CHURNOPS_HOME": str(tmp_path / "state"),
        "BENTOML_HOME": str(tmp_path / "bentoml"),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        **extra_env,
    }
    process = ManagedProcess(
        f"bento-{port}",
        bento_command("127.0.0.1", port),
        tmp_path / f"bento-{port}.log",
        health_url=f"http://127.0.0.1:{port}/healthz",
        env=env,
        cwd=REPO_ROOT,
    )
    return BentoServer(process.start(timeout=120), f"http://127.0.0.1:{port}")


def wait_ready(server: BentoServer, timeout: float = 90) -> None:
    """Block until /readyz answers 200 (a champion is loaded)."""
    deadline = time.monotonic() + timeout
    while httpx.get(f"{server.url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, server.process.log_tail()
        time.sleep(0.5)


@pytest.fixture
def figures(record_property: Callable[[str, object], None]) -> Callable[[str], None]:
    """Report a measured figure (fuzz tally, soak memory, phase times): printed in the run's
    summary even when xdist workers or output capture would hide a plain print."""

    def report(text: str) -> None:
        record_property("figures", text.strip())

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    reports = [r for stat in ("passed", "failed") for r in terminalreporter.stats.get(stat, [])]
    found = [
        (report.nodeid, value)
        for report in reports
        for key, value in getattr(report, "user_properties", ())
        if key == "figures"
    ]
    if found:
        terminalreporter.section("figures")
        for nodeid, value in found:
            terminalreporter.write_line(f"{nodeid}\n    {value}")


# Longest files first, so two xdist workers do not end the run on one long test each.
SLOWEST_FIRST = (
    "tests/containers/",
    "tests/integration/test_prediction_log.py",
    "tests/e2e/test_retrain_loop.py",
    "tests/integration/test_store_outage.py",
    "tests/integration/test_batch_scoring.py",
    "tests/integration/test_faults.py",
    "tests/integration/test_benchmark_serving.py",
    "tests/integration/test_benchmark_pipeline.py",
    "tests/e2e/test_up.py",
    "tests/browser/",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid
        return next(
            (i for i, prefix in enumerate(SLOWEST_FIRST) if path.startswith(prefix)),
            len(SLOWEST_FIRST),
        )

    items.sort(key=rank)
