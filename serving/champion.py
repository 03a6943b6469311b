"""Follow the MLflow `@champion` alias: load at start, poll, swap in the background.

Requests always read `current` once and use that model, so a swap (a single attribute
assignment) never fails or mixes a request; a version that fails to load or to score the
contract's example record is refused and the old one keeps serving.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sklearn.pipeline import Pipeline

from churnops.data.synthetic import generate_customers
from churnops.model.scoring import Scorer, churn_probability, frame_to_rows, scorer
from registry.interface import CHAMPION, ModelRegistry
from registry.signature import input_example

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    uri: str
    model: Pipeline
    score: Scorer  # the model's fastest faithful call (see scoring.scorer)
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


Resolver = Callable[[], tuple[str, str] | None]
Loader = Callable[[str], Pipeline]


def check_rows() -> list[list[object]]:
    """Varied contract rows (all kinds of customers, blank TotalCharges) that a fast scorer
    must score exactly as the pipeline does before it serves."""
    frame = generate_customers(200, seed=2024)
    frame.loc[frame.index[::7], "TotalCharges"] = None
    return frame_to_rows(frame)


def smoke_test(model: Pipeline) -> None:
    """Refuse a model that cannot score the contract's example as a probability."""
    score = churn_probability(model, input_example())
    if score.shape != (1,) or not np.isfinite(score).all() or not 0.0 <= score[0] <= 1.0:
        raise ValueError(f"model returned {score!r} for the example record")


class ChampionFollower:
    """Holds the serving model and keeps it in step with the registry alias."""

    def __init__(self, resolve: Resolver, load: Loader, poll_seconds: float) -> None:
        self._resolve = resolve
        self._load = load
        self.poll_seconds = poll_seconds
        self.current: LoadedModel | None = None
        self.last_error: str | None = None
        self.last_check: str | None = None
        self.failures = 0  # consecutive failed refreshes, for backoff and the status page
        # The version the alias names but that failed to load or score, and why (None when the
        # served version is the one the alias names).
        self.refused: dict[str, str] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def refresh(self) -> bool:
        """Check the alias once; returns True if a new version was swapped in."""
        self.last_check = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            target = self._resolve()
        except Exception as exc:  # registry unreachable: keep serving the loaded model
            return self._failed(exc)
        if target is None:
            self.failures = 0
            self.last_error = "no model version holds the alias yet"
            return False
        version, uri = target
        if self.current is not None and self.current.version == version:
            self.failures = 0
            self.last_error = None
            self.refused = None
            return False
        try:
            model = self._load(uri)
            smoke_test(model)
            score = scorer(model, check_rows())
        except Exception as exc:  # the new version is refused; the loaded one keeps serving
            self.refused = {
                "version": version,
                "reason": _describe(exc),
                "at": self.last_check,
            }
            return self._failed(exc)
        self.failures = 0
        previous = self.current.version if self.current else None
        self.current = LoadedModel(version=version, uri=uri, model=model, score=score)
        self.last_error = None
        self.refused = None
        log.info("serving model version %s (was %s)", version, previous)
        return True

    def _failed(self, exc: Exception) -> bool:
        self.failures += 1
        self.last_error = _describe(exc)
        log.warning("champion refresh failed (%d in a row): %s", self.failures, self.last_error)
        return False

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(target=self._poll, name="champion-follower", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def next_wait(self) -> float:
        """The poll interval, or after failures a backoff of 1, 2, 4 ... s capped at it."""
        if self.failures == 0:
            return self.poll_seconds
        return min(self.poll_seconds, 2.0 ** (self.failures - 1))

    def _poll(self) -> None:
        while not self._stop.wait(self.next_wait()):
            self.refresh()

    def status(self) -> dict[str, object]:
        current = self.current
        return {
            "ready": current is not None,
            "model_version": current.version if current else None,
            "model_uri": current.uri if current else None,
            "loaded_at": current.loaded_at if current else None,
            "last_check": self.last_check,
            "degraded": current is not None and self.failures > 0,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "refused_version": self.refused["version"] if self.refused else None,
            "refused_reason": self.refused["reason"] if self.refused else None,
            "refused_at": self.refused["at"] if self.refused else None,
            "poll_seconds": self.poll_seconds,
        }


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def alias_resolver(registry: ModelRegistry, alias: str = CHAMPION) -> Resolver:
    def resolve() -> tuple[str, str] | None:
        info = registry.by_alias(alias)
        if info is None:
            return None
        return info.version, registry.model_uri(info.version)

    return resolve


def pinned_resolver(model_uri: str) -> Resolver:
    """A fixed URI; its 'version' is the version segment of `models:/name/N`, else the URI."""
    parts = model_uri.removeprefix("models:/").split("/")
    version = parts[1] if model_uri.startswith("models:/") and len(parts) == 2 else model_uri
    return lambda: (version, model_uri)
