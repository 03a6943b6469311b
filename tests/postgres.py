"""A throwaway PostgreSQL server for integration tests and benchmarks (the prediction store
at scale), on a free port of 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import free_port

needs_postgres = pytest.mark.skipif(
    shutil.which("initdb") is None, reason="needs PostgreSQL server binaries"
)


class Postgres:
    """A throwaway PostgreSQL server (trust auth on 127.0.0.1) that can be stopped and
    restarted on the same port and data directory."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="churnops-pg-"))
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"
        self.proc: subprocess.Popen | None = None
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # the server refuses to run as root
            shutil.chown(self.dir, "postgres")
            self._as_postgres = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.dir / "data"), "-U", "postgres", "--auth=trust")

    def _run(self, *command: str) -> None:
        subprocess.run(  # noqa: S603 - fixed PostgreSQL tools, no shell
            [*self._as_postgres, *command], check=True, capture_output=True
        )

    def start(self) -> None:
        command = [
            *self._as_postgres,
            *("postgres", "-D", str(self.dir / "data"), "-p", str(self.port)),
            *("-h", "127.0.0.1", "-k", str(self.dir), "-c", "fsync=off"),
        ]
        with (self.dir / "postgres.log").open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        engine = sqlalchemy.create_engine(self.url)
        wait_for(lambda: _connects(engine), 60, "postgres never accepted connections")
        engine.dispose()

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as in a real outage."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            self.proc.wait(timeout=60)

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _connects(engine: sqlalchemy.Engine) -> bool:
    try:
        with engine.connect():
            return True
    except sqlalchemy.exc.OperationalError:
        return False


def wait_for(condition: Callable[[], bool], timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, message
        time.sleep(0.5)


@pytest.fixture
def postgres() -> Iterator[Postgres]:
    server = Postgres()
    yield server
    server.remove()
