"""What every benchmark shares: memory sampling, the machine it ran on, tables and JSON."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psutil

MIB = 1024 * 1024


def process_rss(pid: int, children: bool = True) -> list[int]:
    """Resident memory of a process and each of its children, in bytes."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)] if children else [root]
    except psutil.NoSuchProcess:
        return []
    sizes = []
    for process in processes:
        try:
            sizes.append(process.memory_info().rss)
        except psutil.NoSuchProcess:
            continue
    return sizes


def tree_rss(pid: int, children: bool = True) -> int:
    """Resident memory of a process and all its children, in bytes (servers fork workers)."""
    return sum(process_rss(pid, children))


@dataclass
class RssSampler:
    """Samples a process tree's RSS in a thread; `peak` is the highest sample (bytes) and
    `largest_peak` the highest of its largest process (a server's worker)."""

    pid: int = field(default_factory=os.getpid)
    interval: float = 0.05
    children: bool = True
    peak: int = 0
    largest_peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def sample(self) -> int:
        sizes = process_rss(self.pid, self.children)
        rss = sum(sizes)
        self.peak = max(self.peak, rss)
        self.largest_peak = max(self.largest_peak, max(sizes, default=0))
        return rss

    def reset(self) -> None:
        self.peak = self.largest_peak = 0
        self.sample()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> RssSampler:
        self.sample()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


@dataclass
class RssTimeline(RssSampler):
    """An RssSampler that keeps every (Unix time, bytes) sample, so the peak of any time span
    (a pipeline step known only from its event timestamps) can be read afterwards."""

    samples: list[tuple[float, int]] = field(default_factory=list)

    def sample(self) -> int:
        rss = super().sample()
        self.samples.append((time.time(), rss))
        return rss

    def peak_between(self, start: float, end: float) -> int:
        """Highest sample in [start, end], or the last one before it for a span shorter than
        the sampling interval."""
        inside = [rss for at, rss in self.samples if start <= at <= end]
        if inside:
            return max(inside)
        before = [rss for at, rss in self.samples if at < start]
        return before[-1] if before else 0


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """`with stopwatch() as t: ...` then `t["seconds"]`."""
    timing: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield timing
    finally:
        timing["seconds"] = time.perf_counter() - start


def machine() -> dict[str, object]:
    """The facts a reader needs to compare figures across machines."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "system": f"{platform.system()} {platform.release()}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def _cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(value: object) -> str:
        if isinstance(value, float):
            return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
        if isinstance(value, int):
            return f"{value:,}"
        return str(value)

    lines = [
        "| " + " | ".join(headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(path: Path, payload: dict[str, object], table: str) -> None:
    """JSON next to a markdown rendering of the same figures (`.md` beside the `.json`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n")
    path.with_suffix(".md").write_text(table + "\n")


class MissingProgram(RuntimeError):
    """A system program is absent and apt-get could not install it (no root, no apt)."""


def install_program(program: str, packages: tuple[str, ...]) -> str:
    """Path of `program`, installing Debian `packages` first when it is missing (CI has none)."""
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
    raise MissingProgram(
        f"{program} is missing and could not be installed (apt packages: {packages})"
    )
