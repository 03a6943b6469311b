"""Run a benchmark module the way a user does (`python -m benchmarks.X`) and read its report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from launcher.stack import REPO_ROOT


class BenchmarkRun(NamedTuple):
    report: dict  # the JSON the module wrote to `out`
    stdout: str  # the table it printed


def run_benchmark(module: str, *args: str, out: Path, timeout: float = 300) -> BenchmarkRun:
    """Run it to the end (its stderr's tail when it fails) and read its report."""
    done = subprocess.run(  # noqa: S603 - our own module, fixed arguments
        [sys.executable, "-m", module, *args, "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return BenchmarkRun(json.loads(out.read_text()), done.stdout)
