"""The embedded stack: MLflow server, Dagster (one code server, webserver, daemon) and the Bento
server on loopback.

The launcher only starts processes and talks to them over HTTP or their CLIs; it never imports
their code.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path

from churnops.settings import ENV_PREFIX, Settings
from launcher.credentials import (
    ADMIN,
    SERVING,
    TRAINING,
    Credentials,
    admin_notice,
    ensure_credentials,
)
from launcher.processes import (
    ManagedProcess,
    ProcessFailed,
    free_port,
    wait_for_command,
    wait_for_http,
    wait_for_port,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TRAINING_JOB = "train_and_promote"
CODE_MODULE = "orchestration.definitions"
# The name a `python_module` workspace entry gets by default; the UI's URLs and run lookups use it.
CODE_LOCATION = CODE_MODULE
# Internal to the stack whatever CHURNOPS_HOST says: only the webserver and daemon talk to it.
CODE_SERVER_HOST = "127.0.0.1"

INSTANCE_MARKER = "# Written by `churnops up`"
DAGSTER_INSTANCE_YAML = f"""\
{INSTANCE_MARKER}; the local instance: SQLite storage under this folder.
# Rewritten on every start (delete this first line to keep your own edits).
telemetry:
  enabled: false
run_queue:
  max_concurrent_runs: 2
# A run that never starts is failed after the start timeout; a cancel that hangs, after the
# cancel timeout. The local launcher cannot see a dead run worker of a STARTED run: `churnops
# up` fails such runs itself when it starts again (launcher/recovery.py).
run_monitoring:
  enabled: true
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  poll_interval_seconds: 30
  max_resume_run_attempts: 0
# Runs that died with their worker (a crash, a stop, a timeout) are re-executed from the failed
# step, up to the job's `dagster/max_retries` tag; a failing step is never retried this way.
run_retries:
  enabled: true
  max_retries: 0
  retry_on_asset_or_op_failure: false
"""


def write_instance_yaml(path: Path) -> bool:
    """Our instance settings, on every start, so an instance made by an older version gains
    run monitoring and retries; a file someone else wrote (no marker) is left alone."""
    if path.exists() and not path.read_text().startswith(INSTANCE_MARKER):
        return False
    path.write_text(DAGSTER_INSTANCE_YAML)
    return True


def code_server_workspace(port: int) -> str:
    """Dagster workspace pointing the webserver and daemon at the one running code server."""
    return (
        "# Written by `churnops up`: the webserver and daemon share one code server.\n"
        "load_from:\n"
        "  - grpc_server:\n"
        f"      host: {CODE_SERVER_HOST}\n"
        f"      port: {port}\n"
        f"      location_name: {CODE_LOCATION}\n"
    )


def code_server_command(port: int) -> list[str]:
    """`dagster code-server start`, as `dagster dev` runs it: a small proxy process in front of
    the process that loads the definitions, so Reload in the UI still re-imports the code."""
    return [
        *(str(BIN / "dagster"), "code-server", "start", "-m", CODE_MODULE),
        *("--location-name", CODE_LOCATION, "-h", CODE_SERVER_HOST, "-p", str(port)),
    ]


def wait_for_code_server(
    port: int, env: dict[str, str], timeout: float, proc: subprocess.Popen
) -> None:
    """The proxy opens its port only once the definitions have loaded: wait for that cheaply,
    then confirm over gRPC (each health-check command is a Python start of its own)."""
    wait_for_port(CODE_SERVER_HOST, port, timeout, proc)
    health_check = [str(BIN / "dagster"), "api", "grpc-health-check"]
    wait_for_command([*health_check, "-h", CODE_SERVER_HOST, "-p", str(port)], 60, proc, env)


def bento_command(host: str, port: int) -> list[str]:
    """`bentoml serve` of the prediction service (run from the repository root)."""
    return [
        str(BIN / "bentoml"),
        "serve",
        "serving.service:ChurnService",
        "--host",
        host,
        "--port",
        str(port),
    ]


def service_env(settings: Settings, login: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for child processes: the caller's, plus the resolved CHURNOPS_* addresses
    and data contract path, and the MLflow login (MLFLOW_TRACKING_USERNAME/PASSWORD) of the
    account the process uses."""
    env = dict(os.environ)
    env.update(login or {})
    env[f"{ENV_PREFIX}HOME"] = str(settings.state_dir)
    env[f"{ENV_PREFIX}MLFLOW_TRACKING_URI"] = settings.tracking_uri
    if settings.contract is not None:
        # Absolute: the services run from the repository root, not the caller's folder.
        env[f"{ENV_PREFIX}CONTRACT"] = str(Path(settings.contract).resolve())
    env["DAGSTER_HOME"] = str(settings.dagster_home)
    env["BENTOML_HOME"] = str(settings.state_dir / "bentoml")
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Stack:
    """Starts the three services in dependency order and stops them in reverse."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.logs = settings.state_dir / "logs"
        self.processes: list[ManagedProcess] = []
        self.dagster_started = False
        # Set by start_mlflow when MLflow runs its auth app.
        self.credentials: Credentials | None = None
        self.admin_notice: str | None = None

    def login(self, account: str) -> dict[str, str]:
        """The MLflow login of `account` (nothing when MLflow runs without auth)."""
        return self.credentials.login_env(account) if self.credentials else {}

    def _process(
        self,
        name: str,
        command: list[str],
        health_url: str | None,
        ready: Callable[[float, subprocess.Popen], None] | None = None,
        account: str = TRAINING,
    ) -> ManagedProcess:
        return ManagedProcess(
            name,
            command,
            self.logs / f"{name}.log",
            health_url=health_url,
            env=service_env(self.settings, self.login(account)),
            cwd=REPO_ROOT,
            ready=ready,
        )

    def _start(self, process: ManagedProcess, timeout: float) -> None:
        self.processes.append(process)
        process.start(timeout=timeout)

    def start_mlflow(self) -> None:
        """The MLflow server; with CHURNOPS_MLFLOW_AUTH, its auth app and the service accounts
        (passwords generated on the first start, kept in the state folder)."""
        from launcher.mlflow_auth import server_env, write_auth_ini
        from launcher.mlflow_server import mlflow_server

        s = self.settings
        env = service_env(s)
        if s.mlflow_auth:
            self.credentials, created = ensure_credentials(s.state_dir)
            self.admin_notice = admin_notice(self.credentials, created, s.state_dir)
            ini = write_auth_ini(s.state_dir / "mlflow" / "auth.ini", s.auth_database_uri)
            env.update(server_env(ini, self.credentials))
        server = mlflow_server(
            s.backend_store_uri,
            s.artifacts_destination,
            s.host,
            s.mlflow_port,
            self.logs / "mlflow.log",
            workers=s.mlflow_workers,
            env=env,
            auth=s.mlflow_auth,
        )
        self._start(server, timeout=180)
        if self.credentials is not None:
            self.provision_accounts(self.credentials)

    def provision_accounts(self, credentials: Credentials) -> None:
        from launcher.mlflow_auth import (
            ProvisioningError,
            churnops_experiments,
            provision_accounts,
        )

        s = self.settings
        passwords = {name: credentials.password(name) for name in (TRAINING, SERVING)}
        try:
            provision_accounts(
                s.tracking_uri,
                (ADMIN, credentials.admin_password),
                passwords,
                s.model_name,
                churnops_experiments(s.experiment),
            )
        except ProvisioningError as exc:
            raise ProcessFailed(
                f"cannot set up MLflow's accounts: {exc}. If the users database "
                f"({s.auth_database_uri}) was made with other passwords than those kept in "
                f"{s.state_dir}, delete the database to start its users over."
            ) from exc

    def prepare_dagster_home(self) -> Path:
        """The instance folder with our dagster.yaml (run monitoring and retries on)."""
        home = self.settings.dagster_home
        home.mkdir(parents=True, exist_ok=True)
        write_instance_yaml(home / "dagster.yaml")
        return home

    def start_dagster(self) -> None:
        """One code server loads the definitions (~340 MiB, ~9 s); the webserver and daemon
        connect to it instead of each loading a copy of their own."""
        home = self.prepare_dagster_home()
        port = free_port()
        workspace_yaml = home / "workspace.yaml"
        workspace_yaml.write_text(code_server_workspace(port))
        workspace = str(workspace_yaml)
        s = self.settings
        code_server = self._process(
            "dagster-code-server",
            code_server_command(port),
            None,
            ready=partial(wait_for_code_server, port, service_env(s)),
        )
        webserver = self._process(
            "dagster-webserver",
            [
                str(BIN / "dagster-webserver"),
                "-w",
                workspace,
                "-h",
                s.host,
                "-p",
                str(s.dagster_port),
            ],
            f"{s.dagster_url}/server_info",
        )
        daemon = self._process(
            "dagster-daemon", [str(BIN / "dagster-daemon"), "run", "-w", workspace], None
        )
        self._start(code_server, timeout=240)
        self._start(webserver, timeout=240)
        self._start(daemon, timeout=0)
        self.dagster_started = True

    def start_bento(self) -> None:
        s = self.settings
        bento = self._process(
            "bento",
            bento_command(s.host, s.bento_port),
            f"{s.bento_url}/healthz",
            account=SERVING,
        )
        self._start(bento, timeout=180)

    def start(self) -> None:
        self.start_mlflow()
        self.start_dagster()
        self.start_bento()

    def check_alive(self) -> None:
        for process in self.processes:
            if not process.running:
                raise ProcessFailed(f"{process.name} exited\n{process.log_tail()}")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()

    def wait_bento_ready(self, timeout: float) -> None:
        wait_for_http(f"{self.settings.bento_url}/readyz", timeout, self.processes[-1].proc)


def launch_training(settings: Settings, timeout: float = 600.0, on_status=None) -> str:
    """Submit the training job to the running Dagster instance and wait for it to finish."""
    from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError

    client = DagsterGraphQLClient(settings.host, port_number=settings.dagster_port, timeout=60)
    deadline = time.monotonic() + timeout
    run_id = None
    while run_id is None:
        try:
            run_id = client.submit_job_execution(TRAINING_JOB)
        except DagsterGraphQLClientError:
            if time.monotonic() > deadline:
                raise
            time.sleep(2)  # the code location may still be loading
    while True:
        status = client.get_run_status(run_id)
        if on_status is not None:
            on_status(run_id, status.value)
        if status.value in ("SUCCESS", "FAILURE", "CANCELED"):
            if status.value != "SUCCESS":
                raise ProcessFailed(f"Dagster run {run_id} ended {status.value}")
            return run_id
        if time.monotonic() > deadline:
            raise ProcessFailed(f"Dagster run {run_id} still {status.value} after {timeout:.0f}s")
        time.sleep(1)
