"""`ModelRegistry`: everything the platform does with its experiment tracker and model registry.

The orchestration, the CLI and serving speak only this interface. `MlflowModelRegistry` is the
production implementation; `InMemoryModelRegistry` runs the same logic without a server (tests).
Alias moves and their history live here, over a few primitives, so both behave the same.
"""

from __future__ import annotations

import io
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
import yaml
from sklearn.pipeline import Pipeline

from churnops.contract import DECISION_THRESHOLD, Contract, ContractFileError, parse_contract
from registry.history import (
    Action,
    AliasEvent,
    champion_stack,
    external_move,
    parse_events,
    rollback_refusal,
)

CHAMPION = "champion"
CHALLENGER = "challenger"
MONITORING_EXPERIMENT = "churn-monitoring"
SCORING_EXPERIMENT = "churn-scoring"
EVALUATION_FOLDER = "evaluation"
REFERENCE_ARTIFACT = "reference/reference.parquet"
MODEL_ARTIFACT = "model"
# The data contract travels with the model: a file of the run (and of the logged model's folder)
# and two tags on the run and the version, so serving and the gate can tell contracts apart.
CONTRACT_ARTIFACT = "contract/contract.yaml"
CONTRACT_FINGERPRINT_TAG = "contract.fingerprint"
CONTRACT_DATASET_TAG = "contract.dataset"
# The decision threshold a version serves with, and why (campaign economics, or the default).
DECISION_THRESHOLD_TAG = "decision.threshold"
DECISION_BASIS_TAG = "decision.basis"
FAILURE_TAG = "churnops.failure"
DEFAULT_DECISION_BASIS = f"{DECISION_THRESHOLD:g}: the version records no decision threshold"


class RegistryError(RuntimeError):
    """A registry operation that cannot be done (no champion, nothing to roll back to, ...)."""


class Figure(Protocol):
    """What the registry needs of a plot: matplotlib's `savefig` (the registry never imports
    matplotlib; closing the figure stays with whoever drew it)."""

    def savefig(self, fname: Any, *args: Any, **kwargs: Any) -> Any: ...


def contract_tags(contract: Contract) -> dict[str, str]:
    """The tags naming what a model was trained on."""
    return {
        CONTRACT_FINGERPRINT_TAG: contract.fingerprint,
        CONTRACT_DATASET_TAG: contract.dataset,
    }


def contract_mismatch(model: str, tags: Mapping[str, str] | None, contract: Contract) -> str | None:
    """Why `model` (named as the message should say it, e.g. "champion v3") must be neither
    served, compared nor monitored under `contract`, or None when it was trained on it. `tags`
    are its version's (or run's) tags; None when they cannot be known."""
    ours = f"{contract.dataset} (fingerprint {contract.fingerprint})"
    if tags is None:
        return (
            f"cannot tell which data contract {model} was trained on (only a registered "
            f"version or a training run carries it), not contract {ours}"
        )
    fingerprint = tags.get(CONTRACT_FINGERPRINT_TAG)
    if fingerprint == contract.fingerprint:
        return None
    if fingerprint is None:
        return (
            f"{model} has no recorded data contract (trained before contracts travelled with "
            f"models), not contract {ours}"
        )
    dataset = tags.get(CONTRACT_DATASET_TAG, "an unnamed dataset")
    return f"{model} was trained on contract {dataset} (fingerprint {fingerprint}), not on {ours}"


def decision_tags(threshold: float, basis: str) -> dict[str, str]:
    return {DECISION_THRESHOLD_TAG: repr(float(threshold)), DECISION_BASIS_TAG: basis[:4000]}


def served_decision(tags: Mapping[str, str] | None) -> tuple[float, str]:
    """(threshold, why) a version serves with: its decision tags, else the default 0.5 (a
    version registered before thresholds were chosen, or a pinned model outside the
    registry)."""
    text = (tags or {}).get(DECISION_THRESHOLD_TAG)
    try:
        threshold = float(text) if text is not None else None
    except ValueError:
        threshold = None
    if threshold is None or not 0.0 <= threshold <= 1.0:
        return DECISION_THRESHOLD, DEFAULT_DECISION_BASIS
    return threshold, (tags or {}).get(DECISION_BASIS_TAG, "")


def figure_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


@dataclass(frozen=True)
class RunRef:
    """A tracked run (training candidate or monitoring report)."""

    run_id: str
    experiment_id: str


@dataclass(frozen=True)
class LoggedRun:
    """A training run holding a logged model that a version can be registered from;
    `contract_tags` (its contract's fingerprint and dataset) go onto every version of it."""

    run_id: str
    experiment_id: str
    model_uri: str
    model_id: str
    contract_tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInfo:
    version: str
    run_id: str | None
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str]


class ModelRegistry(ABC):
    """One registered model plus the experiments its candidates and monitoring reports go to."""

    model_name: str

    # Tracking: runs, metrics, figures, artifacts.

    @abstractmethod
    def log_candidate(
        self,
        run_name: str,
        model: Pipeline,
        params: dict[str, object],
        tags: dict[str, str],
        *,
        contract: Contract,
        datasets: dict[str, pd.DataFrame] | None = None,
    ) -> LoggedRun:
        """One run per candidate holding the model (with the contract's signature and input
        example), the contract file (`CONTRACT_ARTIFACT`) and its tags; `datasets` (context →
        frame, e.g. training/holdout) become the run's dataset inputs."""

    @abstractmethod
    def log_metrics_and_figures(
        self,
        run_id: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        folder: str = EVALUATION_FOLDER,
    ) -> None:
        """Attach metrics and PNG plots (`folder/name`) to an existing run."""

    @abstractmethod
    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        """Attach a text artifact (a JSON or Markdown report) at `artifact_file` to a run."""

    @abstractmethod
    def load_text(self, run_id: str, artifact_file: str) -> str:
        """A text artifact `log_text` stored; `RegistryError` when the run has none there."""

    @abstractmethod
    def run_tags(self, run_id: str) -> dict[str, str]:
        """A run's tags (a training run carries its contract's, like its versions)."""

    @abstractmethod
    def log_reference(self, run_id: str, frame: pd.DataFrame) -> None:
        """Store the frame monitoring compares traffic with (features + scores)."""

    @abstractmethod
    def load_reference(self, run_id: str) -> pd.DataFrame: ...

    @abstractmethod
    def log_monitoring_run(
        self,
        run_name: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        tags: dict[str, str],
        experiment: str = MONITORING_EXPERIMENT,
    ) -> RunRef:
        """A finished report run (drift in `churn-monitoring`, batch scoring lineage in
        `churn-scoring`); `figures` are keyed by their artifact path (e.g.
        `drift/psi_per_feature.png`)."""

    @abstractmethod
    def unfinished_runs(self) -> list[tuple[str, dict[str, str]]]:
        """(run id, tags) of runs still RUNNING in the platform's experiments (training,
        monitoring, scoring): after a crash, the ones whose process died with it."""

    @abstractmethod
    def fail_run(self, run_id: str, reason: str) -> None:
        """End a run its dead process left RUNNING as FAILED, saying why (tag
        `churnops.failure`)."""

    @abstractmethod
    def run_url(self, run: RunRef | LoggedRun) -> str: ...

    @abstractmethod
    def version_url(self, version: str) -> str: ...

    # Registry primitives.

    @abstractmethod
    def ensure_model(self, description: str = "") -> None:
        """Create the registered model unless it exists."""

    @abstractmethod
    def register(self, run: LoggedRun, tags: dict[str, str]) -> str:
        """A new version from the run's logged model, tagged with `tags` and the run's
        contract tags; returns once it is ready to load."""

    @abstractmethod
    def version(self, version: str) -> VersionInfo: ...

    @abstractmethod
    def versions(self) -> list[VersionInfo]:
        """Every version with its aliases, oldest first."""

    @abstractmethod
    def by_alias(self, alias: str) -> VersionInfo | None: ...

    @abstractmethod
    def tag_version(self, version: str, tags: dict[str, str]) -> None: ...

    @abstractmethod
    def load_model(self, ref: str) -> Pipeline:
        """A version number (`"3"`) or a model URI (`models:/churn/3`, `models:/churn@champion`,
        `models:/<model_id>`)."""

    @abstractmethod
    def _set_alias(self, alias: str, version: str) -> None: ...

    @abstractmethod
    def _delete_alias(self, alias: str) -> None: ...

    # Shared behaviour over the primitives.

    def model_uri(self, version: str) -> str:
        return f"models:/{self.model_name}/{version}"

    def champion(self) -> VersionInfo | None:
        return self.by_alias(CHAMPION)

    def contract_of(self, version: str) -> Contract | None:
        """The contract a version was trained on (its run's `CONTRACT_ARTIFACT`), or None
        for a version logged before contracts travelled with models."""
        info = self.version(version)
        if not info.run_id:
            return None
        try:
            text = self.load_text(info.run_id, CONTRACT_ARTIFACT)
        except RegistryError:
            return None
        source = f"{self.model_name} v{version}: {CONTRACT_ARTIFACT}"
        try:
            return parse_contract(yaml.safe_load(text), source)
        except yaml.YAMLError as exc:
            raise ContractFileError(f"{source}: not valid YAML: {exc}") from exc

    def set_challenger(self, version: str) -> None:
        self._set_alias(CHALLENGER, version)

    def promote(
        self, version: str, reason: str, action: Action = "promote", by: str | None = None
    ) -> AliasEvent:
        """Point `@champion` at `version` and record the move on that version (an unrecorded
        move made outside churnops is recorded first, so `from_version` never lies)."""
        self.record_external_move(by or "churnops")
        return self._move_champion(version, action, reason, by)

    def rollback(
        self,
        reason: str = "manual rollback",
        to: str | None = None,
        by: str | None = None,
        action: Action = "rollback",
    ) -> AliasEvent:
        """Move `@champion` back to the version that held it before the current one, or to
        `to`. Without `to` it refuses (`RegistryError`, saying why) when the history cannot
        tell where to go, e.g. while the live alias disagrees with the last recorded move."""
        events = self.alias_history(CHAMPION)
        current = self.champion()
        live = current.version if current else None
        if to is None:
            refusal = rollback_refusal(events, CHAMPION, live)
            if refusal is not None:
                raise RegistryError(f"model '{self.model_name}': {refusal}")
            target = str(champion_stack(events)[-2])
        else:
            target = str(to)
            if target == live:
                raise RegistryError(f"@champion is already on version {target}")
            self.record_external_move(by or "churnops")
        self.require_version(target, "to roll back to (deleted?): name another with --to")
        return self._move_champion(target, action, reason, by)

    def require_version(self, version: str, purpose: str = "") -> VersionInfo:
        """The version, or `RegistryError` naming the model and version when it does not
        exist (`purpose` says what it was wanted for)."""
        try:
            return self.version(version)
        except Exception as exc:  # MLflow and the memory registry raise different types
            wanted = f" {purpose}" if purpose else ""
            raise RegistryError(
                f"model '{self.model_name}' has no version {version}{wanted}"
            ) from exc

    def alias_history(self, alias: str = CHAMPION) -> list[AliasEvent]:
        return parse_events({v.version: v.tags for v in self.versions()}, alias)

    def record_external_move(self, detected_by: str) -> AliasEvent | None:
        """Compare the live `@champion` with the last recorded move and, when they disagree,
        record an `external` event saying so (None when they agree)."""
        current = self.champion()
        now = time.time_ns()
        event = external_move(
            self.alias_history(CHAMPION),
            CHAMPION,
            current.version if current else None,
            now_ns=now,
            at=_moment(now),
            detected_by=detected_by,
        )
        if event is not None:
            self.tag_version(event.tagged_version, {event.tag_key(): event.tag_value()})
        return event

    def _move_champion(
        self, version: str, action: Action, reason: str, by: str | None = None
    ) -> AliasEvent:
        current = self.champion()
        now = time.time_ns()
        event = AliasEvent(
            alias=CHAMPION,
            action=action,
            to_version=str(version),
            from_version=current.version if current else None,
            at=_moment(now),
            at_ns=now,
            reason=reason,
            by=by,
        )
        # Record first: a crash between the two calls leaves history ahead, never missing.
        self.tag_version(str(version), {event.tag_key(): event.tag_value()})
        self._set_alias(CHAMPION, str(version))
        challenger = self.by_alias(CHALLENGER)
        if challenger and challenger.version == str(version):
            self._delete_alias(CHALLENGER)
        return event


def _moment(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")
