"""Launch a real `mlflow server` (tracking + registry + artifact proxy + UI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from churnops.processes import ManagedProcess


def mlflow_server(
    backend_store_uri: str,
    artifacts_destination: str,
    host: str,
    port: int,
    log_path: Path,
    workers: int = 1,
    env: dict[str, str] | None = None,
) -> ManagedProcess:
    """A managed `mlflow server`; artifacts are proxied so clients need only its URL."""
    if backend_store_uri.startswith("sqlite:///"):
        Path(backend_store_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    if "://" not in artifacts_destination:
        Path(artifacts_destination).mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        backend_store_uri,
        "--artifacts-destination",
        artifacts_destination,
        "--serve-artifacts",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    environ = dict(os.environ if env is None else env)
    # MLflow's job runner (six huey consumers, ~250 MB each) serves GenAI features churnops
    # does not use; set MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to have it anyway.
    environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return ManagedProcess(
        "mlflow", command, log_path, health_url=f"http://{host}:{port}/health", env=environ
    )
