"""Docker helpers for the container acceptance test: bring Docker up, run the deploy scripts,
and read the op containers a run left behind."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from launcher.stack import REPO_ROOT
from orchestration.executors import STEP_CONTAINER_LABEL

DEPLOY = REPO_ROOT / "deploy" / "docker"


def docker_usable() -> bool:
    try:
        docker("info")
    except (AssertionError, subprocess.CalledProcessError):
        return False
    return True


def ensure_docker() -> None:
    """Install/start Docker as root when needed; in CI failing to do so fails the test, on a
    developer machine without root it skips."""
    if os.geteuid() == 0:
        script(DEPLOY / "ensure-docker.sh")
        return
    if docker_usable():
        return
    if os.environ.get("CI"):
        pytest.fail("CI is set but Docker is not usable and installing it needs root")
    pytest.skip("Docker is not usable and installing it needs root (CI=true makes this fail)")


def _run_script(path: Path, args: tuple[str, ...], env: dict[str, str] | None) -> tuple[int, str]:
    done = subprocess.run(  # noqa: S603 - our own scripts, fixed arguments
        [str(path), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


def script(path: Path, *args: str, env: dict[str, str] | None = None) -> str:
    """Run a deploy script; its output is returned, or shown in the failure."""
    code, output = _run_script(path, args, env)
    assert code == 0, f"{path.name} {' '.join(args)} failed:\n{output[-6000:]}"
    return output


def stack_logs(env: dict[str, str]) -> str:
    """The stack's recent container logs, for a failure report (never raises)."""
    return _run_script(DEPLOY / "stack.sh", ("logs", "--tail=60"), env)[1][-20000:]


def docker(*args: str) -> str:
    executable = shutil.which("docker")
    assert executable, "no docker CLI on PATH"
    return subprocess.run(  # noqa: S603 - fixed docker CLI arguments
        [executable, *args], capture_output=True, text=True, check=True
    ).stdout


# Programs that only building needs; none may be left in a runtime image.
BUILD_TOOLS = ("gcc", "cc", "make", "pip", "pip3", "uv")


def runtime_image_findings(image: str) -> list[str]:
    """What breaks the runtime-image rules: running as root, or build tools on the PATH."""
    user = docker("image", "inspect", "--format", "{{.Config.User}}", image).strip()
    findings = [f"{image} runs as root"] if user in ("", "root", "0", "0:0") else []
    lookup = " ".join(f"command -v {tool};" for tool in BUILD_TOOLS)
    found = docker("run", "--rm", "--entrypoint", "/bin/sh", image, "-c", f"{lookup} true")
    findings += [f"{image} has {path}" for path in found.split()]
    return findings


@dataclass(frozen=True)
class OpContainer:
    id: str
    step_key: str
    job: str
    image: str
    exit_code: int
    mounts: tuple[str, ...]  # volume names or host paths


def op_containers(network: str) -> list[OpContainer]:
    """The containers the docker executor started on `network`, one per op (step)."""
    ids = docker(
        "ps", "-aq", "--filter", f"label={STEP_CONTAINER_LABEL}", "--filter", f"network={network}"
    ).split()
    if not ids:
        return []
    found = []
    for info in json.loads(docker("inspect", *ids)):
        env = dict(item.split("=", 1) for item in info["Config"]["Env"])
        found.append(
            OpContainer(
                id=info["Id"],
                step_key=env.get("DAGSTER_RUN_STEP_KEY", ""),
                job=env.get("DAGSTER_RUN_JOB_NAME", ""),
                image=info["Config"]["Image"],
                exit_code=info["State"]["ExitCode"],
                mounts=tuple(m.get("Name") or m["Source"] for m in info["Mounts"]),
            )
        )
    return found


# Run inside the stack's s3 container (the store is on the private network only).
LIST_KEYS = (
    "import boto3; s3 = boto3.client('s3', endpoint_url='http://127.0.0.1:9000', "
    "region_name='us-east-1', aws_access_key_id='k', aws_secret_access_key='k'); "
    "pages = s3.get_paginator('list_objects_v2').paginate(Bucket='churnops'); "
    "print('\\n'.join(o['Key'] for p in pages for o in p.get('Contents', [])))"
)


def object_store_keys(project: str) -> list[str]:
    """Every key in the `churnops` bucket of the stack's S3-compatible store."""
    (container,) = docker(
        "ps",
        "-q",
        "--filter",
        f"label=com.docker.compose.project={project}",
        "--filter",
        "label=com.docker.compose.service=s3",
    ).split()
    return docker("exec", container, "python", "-c", LIST_KEYS).split()


@dataclass
class Phases:
    """Wall-clock time of each phase of the acceptance run."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        start = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - start

    def report(self) -> str:
        lines = [f"  {name:<28}{secs:7.1f} s" for name, secs in self.seconds.items()]
        lines.append(f"  {'total':<28}{sum(self.seconds.values()):7.1f} s")
        return "container acceptance timings:\n" + "\n".join(lines)
