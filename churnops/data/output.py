"""Where a file the platform writes goes: a local path or an object-store URL, one Arrow
filesystem either way (batch scores and prediction-log exports)."""

from __future__ import annotations

from pathlib import Path

import pyarrow.fs as pafs


def output_filesystem(output: str) -> tuple[pafs.FileSystem, str]:
    """A local path (its folder created) or an object-store URL."""
    if "://" in output:
        return pafs.FileSystem.from_uri(output)
    path = Path(output).expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    return pafs.LocalFileSystem(), str(path)
