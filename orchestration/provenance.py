"""Where a model came from: the code revision recorded with every run and version."""

from __future__ import annotations

import os
import shutil
import subprocess
from functools import cache
from pathlib import Path


@cache
def git_revision() -> str:
    """The checkout's commit (with `-dirty` if modified); CHURNOPS_GIT_REVISION in images."""
    if revision := os.environ.get("CHURNOPS_GIT_REVISION"):
        return revision
    root = Path(__file__).resolve().parent.parent
    git = shutil.which("git")
    if git is None:
        return "unknown"
    try:
        # Fixed argument lists, no shell, no user input.
        sha = subprocess.run(  # noqa: S603
            [git, "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(  # noqa: S603
            [git, "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
