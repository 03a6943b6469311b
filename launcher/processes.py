"""Start, health-check and stop the platform's server processes (MLflow, Dagster, Bento)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
LOWEST_PICKED_PORT = 10000


def ephemeral_port_range(path: Path = EPHEMERAL_RANGE_FILE) -> tuple[int, int]:
    """The ports the kernel hands to outgoing connections (Linux's default when unreadable)."""
    try:
        low, high = (int(part) for part in path.read_text().split())
    except (OSError, ValueError):
        return 32768, 60999
    return low, high


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port() -> int:
    """A TCP port nobody uses right now on loopback, picked outside the ephemeral range: a port
    from bind(0) is one an outgoing connection may take before our server binds it (then the
    server fails with "Address already in use")."""
    low, high = ephemeral_port_range()
    spare = [*range(LOWEST_PICKED_PORT, min(low, 65536)), *range(max(high + 1, 1024), 65536)]
    for _ in range(200):
        if not spare:
            break
        port = random.choice(spare)  # noqa: S311 - spreads picks across callers, not a secret
        if _bindable(port):
            return port
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ProcessFailed(RuntimeError):
    """A managed process exited or never became healthy; the message carries its log tail."""


def wait_for_http(url: str, timeout: float, proc: subprocess.Popen | None = None) -> None:
    """Poll `url` until it answers 200, failing fast if `proc` dies first."""
    deadline = time.monotonic() + timeout
    last_error = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessFailed(f"process exited with code {proc.returncode} before {url} answered")
        try:
            response = httpx.get(url, timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as exc:
            last_error = type(exc).__name__
        time.sleep(0.25)
    raise ProcessFailed(f"{url} not healthy after {timeout:.0f}s ({last_error})")


def wait_for_port(
    host: str, port: int, timeout: float, proc: subprocess.Popen | None = None
) -> None:
    """Poll until something accepts TCP connections on `host:port`, failing fast if `proc` dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessFailed(f"process exited with code {proc.returncode} before {port} opened")
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=2.0):
            return
        time.sleep(0.25)
    raise ProcessFailed(f"{host}:{port} not listening after {timeout:.0f}s")


def wait_for_command(
    command: Sequence[str],
    timeout: float,
    proc: subprocess.Popen | None = None,
    env: dict[str, str] | None = None,
) -> None:
    """Run a health-check command until it exits 0, failing fast if `proc` dies first."""
    deadline = time.monotonic() + timeout
    last_output = "never ran"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise ProcessFailed(f"process exited with code {proc.returncode} before it was healthy")
        try:
            # The platform's own health-check commands, built from settings; never a shell.
            check = subprocess.run(  # noqa: S603
                command,
                capture_output=True,
                text=True,
                env=env,
                timeout=max(deadline - time.monotonic(), 1.0),
                check=False,
            )
        except subprocess.TimeoutExpired:
            break
        if check.returncode == 0:
            return
        last_output = (check.stdout + check.stderr).strip()[-500:]
        time.sleep(1.0)
    raise ProcessFailed(f"{command[0]} ... not healthy after {timeout:.0f}s ({last_output})")


class ManagedProcess:
    """A child process in its own session, logging to a file, stopped with its whole group."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        log_path: Path,
        health_url: str | None = None,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        ready: Callable[[float, subprocess.Popen], None] | None = None,
    ) -> None:
        self.name = name
        self.command = list(command)
        self.log_path = log_path
        self.health_url = health_url
        # For servers without an HTTP health URL: ready(timeout, proc) returns once they serve.
        self.ready = ready
        self.env = env
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            # The platform's own server commands, built from settings; never a shell.
            self.proc = subprocess.Popen(  # noqa: S603
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        if self.health_url or self.ready:
            try:
                if self.health_url:
                    wait_for_http(self.health_url, timeout, self.proc)
                if self.ready:
                    self.ready(timeout, self.proc)
            except ProcessFailed as exc:
                self.stop()
                raise ProcessFailed(f"{self.name}: {exc}\n{self.log_tail()}") from exc
        return self

    def log_tail(self, lines: int = 30) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM the process group (graceful), SIGKILL whatever is left after `timeout`."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        _signal_group(self.proc.pid, signal.SIGKILL)

    def __enter__(self) -> ManagedProcess:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
