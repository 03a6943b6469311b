"""Launch a real `mlflow server` (tracking + registry + artifact proxy + UI)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from launcher.credentials import Credentials
from launcher.mlflow_auth import APP_NAME, server_env, write_auth_ini
from launcher.processes import ManagedProcess, free_port


def mlflow_server(
    backend_store_uri: str,
    artifacts_destination: str,
    host: str,
    port: int,
    log_path: Path,
    workers: int = 1,
    env: dict[str, str] | None = None,
    auth: bool = False,
) -> ManagedProcess:
    """A managed `mlflow server`; artifacts are proxied so clients need only its URL. With
    `auth`, MLflow's basic-auth app (configured by the MLFLOW_AUTH_* variables of `env`)."""
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
        *(("--app-name", APP_NAME) if auth else ()),
    ]
    environ = dict(os.environ if env is None else env)
    # MLflow's job runner (six huey consumers, ~250 MB each) serves GenAI features churnops
    # does not use; set MLFLOW_SERVER_ENABLE_JOB_EXECUTION=true to have it anyway.
    environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    return ManagedProcess(
        "mlflow", command, log_path, health_url=f"http://{host}:{port}/health", env=environ
    )


def local_mlflow_server(
    root: Path,
    port: int | None = None,
    env: dict[str, str] | None = None,
    credentials: Credentials | None = None,
) -> tuple[str, ManagedProcess]:
    """Its URL and an `mlflow server` on loopback holding everything under `root` (SQLite store,
    local artifacts): what tests and benchmarks run against. The same `root` and `port` give
    back a stopped server with all it held. With `credentials`, the basic-auth app with its
    users database in `root` too."""
    port = port or free_port()
    if credentials is not None:
        ini = write_auth_ini(root / "auth.ini", f"sqlite:///{root / 'auth.db'}")
        env = {**(os.environ if env is None else env), **server_env(ini, credentials)}
    server = mlflow_server(
        f"sqlite:///{root / 'mlflow.db'}",
        str(root / "artifacts"),
        "127.0.0.1",
        port,
        root / "mlflow.log",
        env=env,
        auth=credentials is not None,
    )
    return f"http://127.0.0.1:{port}", server
