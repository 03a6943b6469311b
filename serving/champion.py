"""Follow the MLflow `@champion` alias: load at start, poll, swap in the background.

Requests always read `current` once and use that model, so a swap (a single attribute
assignment) never fails or mixes a request; a version trained on another data contract (its
`contract.fingerprint` tag differs or is missing), or one that fails to load or to score the
contract's example record, is refused and the old one keeps serving.
"""

from __future__ import annotations

import gc
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from threadpoolctl import threadpool_limits

from churnops.contract import Contract
from churnops.model.reasons import Explainer, build_explainer
from churnops.model.scoring import Scorer, check_rows, churn_probability, rows_to_frame, scorer
from registry.interface import CHAMPION, ModelRegistry, contract_mismatch, served_decision

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LoadedModel:
    version: str
    uri: str
    model: Pipeline
    score: Scorer  # the model's fastest faithful call (see scoring.scorer)
    threshold: float = 0.5  # churn when probability >= threshold (the version's decision tags)
    decision_basis: str = ""
    # Reason codes; None with `explain_error` saying why (the version still serves scores).
    explainer: Explainer | None = None
    explain_error: str | None = None
    loaded_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))


class Candidate(NamedTuple):
    """What the alias (or a pinned URI) names: the version, where to load it, its registry
    tags (None when they cannot be known, e.g. a pinned local path) and its training run (whose
    reference sample explanations are measured against)."""

    version: str
    uri: str
    tags: dict[str, str] | None
    run_id: str | None = None


Resolver = Callable[[], Candidate | None]
Loader = Callable[[str], Pipeline]
ReferenceLoader = Callable[[str], pd.DataFrame]  # training run id -> reference sample


class ContractMismatch(ValueError):
    """A version trained on another data contract than the one this server is configured with."""


def smoke_test(model: Pipeline, contract: Contract) -> None:
    """Refuse a model that cannot score the contract's example as a probability."""
    example = contract.example_record()
    frame = rows_to_frame([[example[name] for name in contract.feature_names]], contract)
    score = churn_probability(model, frame, contract)
    if score.shape != (1,) or not np.isfinite(score).all() or not 0.0 <= score[0] <= 1.0:
        raise ValueError(f"model returned {score!r} for the example record")


class ChampionFollower:
    """Holds the serving model and keeps it in step with the registry alias."""

    def __init__(
        self,
        resolve: Resolver,
        load: Loader,
        poll_seconds: float,
        contract: Contract,
        load_reference: ReferenceLoader | None = None,
        alias: str = CHAMPION,
    ) -> None:
        # The champion stays loaded while its alias is unset (answers go on); any other alias
        # (a rollout's challenger) is dropped with it, so a promoted or removed challenger is
        # never served or shadowed again.
        self.alias = alias
        self._resolve = resolve
        self._load = load
        self._load_reference = load_reference
        self.poll_seconds = poll_seconds
        self.contract = contract
        self._check_rows = check_rows(contract)
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
            if self.alias != CHAMPION:
                self.current = None
            self.failures = 0
            self.last_error = "no model version holds the alias yet"
            return False
        version, uri, tags, run_id = target
        if self.current is not None and self.current.version == version:
            self.failures = 0
            self.last_error = None
            self.refused = None
            return False
        try:
            problem = contract_mismatch(_named(version), tags, self.contract)
            if problem is not None:
                raise ContractMismatch(problem)
            model = self._load(uri)
            # One OpenMP thread, as model calls use (serving/batcher.py): the trees' parallel
            # regions made these few small checks take a second on a busy 2-core machine.
            with threadpool_limits(limits=1):
                smoke_test(model, self.contract)
                score = scorer(model, self._check_rows, self.contract)
        except Exception as exc:  # the new version is refused; the loaded one keeps serving
            self.refused = {
                "version": version,
                "reason": _describe(exc),
                "at": self.last_check,
            }
            return self._failed(exc)
        self.failures = 0
        previous = self.current.version if self.current else None
        threshold, basis = served_decision(tags)
        with threadpool_limits(limits=1):
            explainer, explain_error = self._explainer(model, run_id)
        self.current = LoadedModel(
            version=version,
            uri=uri,
            model=model,
            score=score,
            threshold=threshold,
            decision_basis=basis,
            explainer=explainer,
            explain_error=explain_error,
        )
        self.last_error = None
        self.refused = None
        # What the load imported and built (MLflow's flavour, skops, the model) lives as long
        # as the version serves: out of the collector's full passes, which otherwise walk it
        # and stall requests (~150 ms for a worker's ~270k objects on the build machine).
        gc.freeze()
        log.info("@%s: model version %s loaded (was %s)", self.alias, version, previous)
        return True

    def _explainer(
        self, model: Pipeline, run_id: str | None
    ) -> tuple[Explainer | None, str | None]:
        """Reason codes measured against the version's reference sample; a version without one
        (or a model no explainer supports) still serves, without reasons."""
        if run_id is None or self._load_reference is None:
            return None, "no training run to take a reference sample from"
        try:
            return build_explainer(model, self.contract, self._load_reference(run_id)), None
        except Exception as exc:
            return None, _describe(exc)

    def _failed(self, exc: Exception) -> bool:
        self.failures += 1
        self.last_error = _describe(exc)
        log.warning(
            "%s refresh failed (%d in a row): %s", self.alias, self.failures, self.last_error
        )
        return False

    def start(self) -> None:
        self.refresh()
        self._thread = threading.Thread(
            target=self._poll, name=f"{self.alias}-follower", daemon=True
        )
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
            "decision": (
                {"threshold": current.threshold, "basis": current.decision_basis}
                if current
                else None
            ),
            "reasons": (
                {
                    "method": current.explainer.method if current.explainer else None,
                    "unavailable": current.explain_error,
                }
                if current
                else None
            ),
            "last_check": self.last_check,
            "degraded": current is not None and self.failures > 0,
            "last_error": self.last_error,
            "consecutive_failures": self.failures,
            "refused_version": self.refused["version"] if self.refused else None,
            "refused_reason": self.refused["reason"] if self.refused else None,
            "refused_at": self.refused["at"] if self.refused else None,
            "poll_seconds": self.poll_seconds,
            "contract": {
                "dataset": self.contract.dataset,
                "fingerprint": self.contract.fingerprint,
            },
        }


def _named(version: str) -> str:
    """How a refusal names a candidate: `version 3`, or the pinned URI itself."""
    return f"version {version}" if version.isdigit() else version


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:500]


def alias_resolver(registry: ModelRegistry, alias: str = CHAMPION) -> Resolver:
    def resolve() -> Candidate | None:
        info = registry.by_alias(alias)
        if info is None:
            return None
        return Candidate(info.version, registry.model_uri(info.version), info.tags, info.run_id)

    return resolve


VERSION_URI = re.compile(r"^models:/(?P<name>[^/@]+)/(?P<version>\d+)$")
ALIAS_URI = re.compile(r"^models:/(?P<name>[^/@]+)@(?P<alias>[^/@]+)$")
RUN_URI = re.compile(r"^runs:/(?P<run_id>[^/]+)/.+$")


def pinned_resolver(
    model_uri: str, registry: ModelRegistry, registry_for: Callable[[str], ModelRegistry]
) -> Resolver:
    """A fixed URI and the tags its contract is checked by. `models:/name/N` is version N and
    `models:/name@alias` the version the alias names now (loaded by number, so the tags checked
    are the model loaded), both with their version's tags from `registry_for(name)`;
    `runs:/RUN/path` is its own 'version' with the run's tags from `registry`. Any other URI has
    no tags to check its contract by (it is refused)."""
    by_version, by_alias = VERSION_URI.match(model_uri), ALIAS_URI.match(model_uri)
    by_run = RUN_URI.match(model_uri)
    match = by_version or by_alias
    named = registry_for(match["name"]) if match else None

    def resolve() -> Candidate | None:
        if named is not None and by_version is not None:
            version = by_version["version"]
            info = named.version(version)
            return Candidate(version, model_uri, info.tags, info.run_id)
        if named is not None and by_alias is not None:
            info = named.by_alias(by_alias["alias"])
            if info is None:
                return None
            return Candidate(info.version, named.model_uri(info.version), info.tags, info.run_id)
        if by_run is not None:
            run_id = by_run["run_id"]
            return Candidate(model_uri, model_uri, registry.run_tags(run_id), run_id)
        return Candidate(model_uri, model_uri, None)

    return resolve
