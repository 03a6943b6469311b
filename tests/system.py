"""Install the system programs a test layer needs (Debian packages), as CI has none of them.

On a developer machine without root the layer is skipped with the reason shown; under
`CI=true` a missing program is a failure, never a silent skip.
"""

from __future__ import annotations

import os

import pytest

from benchmarks.common import MissingProgram, install_program


def ensure_program(program: str, packages: tuple[str, ...]) -> str:
    """Path of `program`, installing `packages` with apt-get first when it is missing."""
    try:
        return install_program(program, packages)
    except MissingProgram as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
