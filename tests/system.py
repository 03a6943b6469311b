"""Install the system programs a test layer needs (Debian packages), as CI has none of them.

On a developer machine without root the layer is skipped with the reason shown; under
`CI=true` a missing program is a failure, never a silent skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest


def ensure_program(program: str, packages: tuple[str, ...]) -> str:
    """Path of `program`, installing `packages` with apt-get first when it is missing."""
    found = shutil.which(program)
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        install = ["apt-get", "install", "-y", "-qq", *packages]
        for command in (["apt-get", "update", "-qq"], install):
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)  # noqa: S603
        found = shutil.which(program)
        if found:
            return found
    message = f"{program} is missing and could not be installed (apt packages: {packages})"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)
