"""`ModelRegistry` held in memory: runs, metrics, PNG figures, models as Python objects, versions,
aliases and tags. For tests and local experiments: the same alias logic as MLflow, no server."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

import pandas as pd
from sklearn.pipeline import Pipeline

from churnops.contract import Contract, dump_contract
from registry.interface import (
    CONTRACT_ARTIFACT,
    EVALUATION_FOLDER,
    FAILURE_TAG,
    MONITORING_EXPERIMENT,
    Figure,
    LoggedRun,
    ModelRegistry,
    RegistryError,
    RunRef,
    VersionInfo,
    contract_tags,
    figure_png,
)


@dataclass
class MemoryRun:
    run_id: str
    experiment: str
    name: str
    tags: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    figures: dict[str, bytes] = field(default_factory=dict)  # artifact path -> PNG
    texts: dict[str, str] = field(default_factory=dict)  # artifact path -> text
    datasets: dict[str, pd.DataFrame] = field(default_factory=dict)  # context -> frame
    reference: pd.DataFrame | None = None
    status: str = "FINISHED"  # runs end as they are logged; tests set RUNNING to mimic a crash


@dataclass
class _Version:
    run_id: str
    source: str
    model_id: str
    tags: dict[str, str]


class InMemoryModelRegistry(ModelRegistry):
    """Everything in dicts; the attributes are public so tests can look inside."""

    def __init__(self, model_name: str, experiment: str) -> None:
        self.model_name = model_name
        self.experiment = experiment
        self.description: str | None = None  # None until the registered model exists
        self.experiments: dict[str, str] = {}  # name -> id
        self.runs: dict[str, MemoryRun] = {}
        self.models: dict[str, Pipeline] = {}  # model id -> model
        self.model_versions: dict[str, _Version] = {}
        self.aliases: dict[str, str] = {}  # alias -> version
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # Tracking.

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
        trained_on = contract_tags(contract)
        run = self._new_run(self.experiment, run_name, {**tags, **trained_on})
        run.params = {k: str(v) for k, v in params.items()}
        run.datasets = dict(datasets or {})
        run.texts[CONTRACT_ARTIFACT] = dump_contract(contract)
        model_id = f"m-{next(self._ids)}"
        self.models[model_id] = model
        experiment_id = self.experiments[self.experiment]
        return LoggedRun(run.run_id, experiment_id, f"models:/{model_id}", model_id, trained_on)

    def log_metrics_and_figures(
        self,
        run_id: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        folder: str = EVALUATION_FOLDER,
    ) -> None:
        run = self._run(run_id)
        run.metrics.update({k: float(v) for k, v in metrics.items()})
        run.figures.update({f"{folder}/{name}": figure_png(fig) for name, fig in figures.items()})

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._run(run_id).texts[artifact_file] = text

    def load_text(self, run_id: str, artifact_file: str) -> str:
        text = self._run(run_id).texts.get(artifact_file)
        if text is None:
            raise RegistryError(f"run {run_id} has no artifact {artifact_file}")
        return text

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self._run(run_id).tags)

    def log_reference(self, run_id: str, frame: pd.DataFrame) -> None:
        self._run(run_id).reference = frame.copy()

    def load_reference(self, run_id: str) -> pd.DataFrame:
        reference = self._run(run_id).reference
        if reference is None:
            raise RegistryError(f"run {run_id} has no reference frame")
        return reference.copy()

    def log_monitoring_run(
        self,
        run_name: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        tags: dict[str, str],
        experiment: str = MONITORING_EXPERIMENT,
    ) -> RunRef:
        run = self._new_run(experiment, run_name, tags)
        run.metrics = {k: float(v) for k, v in metrics.items()}
        run.figures = {path: figure_png(fig) for path, fig in figures.items()}
        return RunRef(run.run_id, self.experiments[experiment])

    def unfinished_runs(self) -> list[tuple[str, dict[str, str]]]:
        return [
            (run.run_id, dict(run.tags)) for run in self.runs.values() if run.status == "RUNNING"
        ]

    def fail_run(self, run_id: str, reason: str) -> None:
        run = self._run(run_id)
        run.tags[FAILURE_TAG] = reason
        run.status = "FAILED"

    def run_url(self, run: RunRef | LoggedRun) -> str:
        return f"memory://experiments/{run.experiment_id}/runs/{run.run_id}"

    def version_url(self, version: str) -> str:
        return f"memory://models/{self.model_name}/versions/{version}"

    # Registry primitives.

    def ensure_model(self, description: str = "") -> None:
        if self.description is None:
            self.description = description

    def register(self, run: LoggedRun, tags: dict[str, str]) -> str:
        self.ensure_model()
        if run.model_id not in self.models:
            raise RegistryError(f"no logged model {run.model_id}")
        with self._lock:
            version = str(len(self.model_versions) + 1)
            self.model_versions[version] = _Version(
                run.run_id, run.model_uri, run.model_id, {**run.contract_tags, **tags}
            )
        return version

    def version(self, version: str) -> VersionInfo:
        found = self.model_versions.get(str(version))
        if found is None:
            raise RegistryError(f"model '{self.model_name}' has no version {version}")
        aliases = tuple(sorted(a for a, v in self.aliases.items() if v == str(version)))
        return VersionInfo(str(version), found.run_id, found.source, aliases, dict(found.tags))

    def versions(self) -> list[VersionInfo]:
        return [self.version(v) for v in sorted(self.model_versions, key=int)]

    def by_alias(self, alias: str) -> VersionInfo | None:
        version = self.aliases.get(alias)
        return self.version(version) if version is not None else None

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        self.version(version)  # refuses an unknown version, as MLflow does
        self.model_versions[str(version)].tags.update(tags)

    def load_model(self, ref: str) -> Pipeline:
        """A version, `models:/<name>/<version>`, `models:/<name>@<alias>` or `models:/<id>`."""
        target = ref.removeprefix("models:/") if ref.startswith("models:/") else None
        if ":" not in ref:
            return self._model_of(self.version(ref))
        if target is None:
            raise RegistryError(f"the in-memory registry cannot load {ref!r}")
        if "/" not in target and "@" not in target:  # a logged model id
            if target not in self.models:
                raise RegistryError(f"no logged model {target}")
            return self.models[target]
        name, by_alias, rest = target.partition("@")
        if not by_alias:
            name, _, rest = target.partition("/")
        if name != self.model_name:
            raise RegistryError(f"unknown registered model {name!r}")
        info = self.by_alias(rest) if by_alias else self.version(rest)
        if info is None:
            raise RegistryError(f"model '{name}' has no version with alias {rest!r}")
        return self._model_of(info)

    def _set_alias(self, alias: str, version: str) -> None:
        self.version(version)
        self.aliases[alias] = str(version)

    def _delete_alias(self, alias: str) -> None:
        self.aliases.pop(alias, None)

    # Helpers.

    def _new_run(self, experiment: str, name: str, tags: dict[str, str]) -> MemoryRun:
        with self._lock:
            self.experiments.setdefault(experiment, str(len(self.experiments)))
            run = MemoryRun(f"run-{next(self._ids)}", experiment, name, dict(tags))
            self.runs[run.run_id] = run
        return run

    def _model_of(self, info: VersionInfo) -> Pipeline:
        return self.models[self.model_versions[info.version].model_id]

    def _run(self, run_id: str) -> MemoryRun:
        try:
            return self.runs[run_id]
        except KeyError:
            raise RegistryError(f"no run {run_id}") from None
