"""Where a model came from: the code revision recorded with every run and version."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path


@cache
def git_revision() -> str:
    """The checkout's commit (with `-dirty` if modified); CHURNOPS_GIT_REVISION in images."""
    if revision := os.environ.get("CHURNOPS_GIT_REVISION"):
        return revision
    root = Path(__file__).resolve().parent.parent
    try:
        sha = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{sha}-dirty" if dirty else sha
