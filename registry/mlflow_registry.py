"""`ModelRegistry` on an MLflow server, through `MlflowClient` only.

Nothing here touches MLflow's process-wide state (`set_tracking_uri`, active runs, the fluent
API): a process can talk to several servers, and tests never leak a URI into each other.
"""

from __future__ import annotations

import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import mlflow.artifacts
import mlflow.sklearn
import pandas as pd
from mlflow.entities import LoggedModelOutput, Metric, Param, RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model
from mlflow.store.artifact.utils.models import get_model_name_and_version
from mlflow.tracking import MlflowClient
from mlflow.tracking.context.registry import resolve_tags
from sklearn.pipeline import Pipeline

from churnops.contract import Contract, dump_contract
from churnops.model.recipes import TRUSTED_TYPES
from registry.datasets import dataset_input
from registry.interface import (
    CONTRACT_ARTIFACT,
    EVALUATION_FOLDER,
    FAILURE_TAG,
    MODEL_ARTIFACT,
    MONITORING_EXPERIMENT,
    REFERENCE_ARTIFACT,
    SCORING_EXPERIMENT,
    Figure,
    LoggedRun,
    ModelRegistry,
    RegistryError,
    RunRef,
    VersionInfo,
    contract_tags,
    figure_png,
)
from registry.signature import input_example, model_signature

REGISTRATION_WAIT_SECONDS = 120
_MISSING = ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE")
# `runs:/<run>/<name>[/path]`: a model logged by this platform lives with the run's LoggedModel.
_RUN_MODEL_URI = re.compile(r"^runs:/(?P<run_id>[\w-]+)/(?P<name>[\w.-]+)(?P<rest>/.*)?$")


def version_info(mv: ModelVersion) -> VersionInfo:
    aliases = tuple(mv.aliases or ())
    return VersionInfo(str(mv.version), mv.run_id, mv.source, aliases, dict(mv.tags))


class MlflowModelRegistry(ModelRegistry):
    """One registered model and its training experiment on one MLflow server."""

    def __init__(self, tracking_uri: str, model_name: str, experiment: str) -> None:
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

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
        with self._run(self.experiment, run_name, {**tags, **trained_on}) as run:
            self.client.log_batch(run.run_id, params=[Param(k, str(v)) for k, v in params.items()])
            self.log_text(run.run_id, dump_contract(contract), CONTRACT_ARTIFACT)
            if datasets:
                target = contract.target.name
                inputs = [dataset_input(frame, ctx, target) for ctx, frame in datasets.items()]
                self.client.log_inputs(run.run_id, datasets=inputs)
            model_id = self._log_model(run, model, params, contract)
        model_uri = f"models:/{model_id}"
        return LoggedRun(run.run_id, run.experiment_id, model_uri, model_id, trained_on)

    def log_metrics_and_figures(
        self,
        run_id: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        folder: str = EVALUATION_FOLDER,
    ) -> None:
        now = int(time.time() * 1000)
        metric_list = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
        self.client.log_batch(run_id, metrics=metric_list)
        for name, figure in figures.items():
            self._log_bytes(run_id, figure_png(figure), f"{folder}/{name}")

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self._log_bytes(run_id, text.encode("utf-8"), artifact_file)

    def load_text(self, run_id: str, artifact_file: str) -> str:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                local = self.client.download_artifacts(run_id, artifact_file, tmp)
            except (MlflowException, OSError) as exc:
                raise RegistryError(f"run {run_id} has no artifact {artifact_file}") from exc
            return Path(local).read_text(encoding="utf-8")

    def run_tags(self, run_id: str) -> dict[str, str]:
        return dict(self.client.get_run(run_id).data.tags)

    def log_reference(self, run_id: str, frame: pd.DataFrame) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / Path(REFERENCE_ARTIFACT).name
            frame.to_parquet(path, index=False)
            self.client.log_artifact(run_id, str(path), str(Path(REFERENCE_ARTIFACT).parent))

    def load_reference(self, run_id: str) -> pd.DataFrame:
        with tempfile.TemporaryDirectory() as tmp:
            return pd.read_parquet(self.client.download_artifacts(run_id, REFERENCE_ARTIFACT, tmp))

    def log_monitoring_run(
        self,
        run_name: str,
        metrics: dict[str, float],
        figures: dict[str, Figure],
        tags: dict[str, str],
        experiment: str = MONITORING_EXPERIMENT,
    ) -> RunRef:
        with self._run(experiment, run_name, tags) as run:
            now = int(time.time() * 1000)
            metric_list = [Metric(k, float(v), now, 0) for k, v in metrics.items()]
            self.client.log_batch(run.run_id, metrics=metric_list)
            for path, figure in figures.items():
                self._log_bytes(run.run_id, figure_png(figure), path)
        return run

    def unfinished_runs(self) -> list[tuple[str, dict[str, str]]]:
        names = (self.experiment, MONITORING_EXPERIMENT, SCORING_EXPERIMENT)
        experiments = [self.client.get_experiment_by_name(name) for name in names]
        ids = [experiment.experiment_id for experiment in experiments if experiment is not None]
        if not ids:
            return []
        runs = self.client.search_runs(ids, "attributes.status = 'RUNNING'", max_results=1000)
        return [(run.info.run_id, dict(run.data.tags)) for run in runs]

    def fail_run(self, run_id: str, reason: str) -> None:
        self.client.set_tag(run_id, FAILURE_TAG, reason[:5000])
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))

    def run_url(self, run: RunRef | LoggedRun) -> str:
        return f"{self.tracking_uri}/#/experiments/{run.experiment_id}/runs/{run.run_id}"

    def version_url(self, version: str) -> str:
        return f"{self.tracking_uri}/#/models/{self.model_name}/versions/{version}"

    # Registry primitives.

    def ensure_model(self, description: str = "") -> None:
        """The registered model, with `description` if it has none: with MLflow's auth app
        its admin creates the model empty before any training (under auth, alias lookups on a
        missing model answer 403 rather than "not found")."""
        try:
            model = self.client.get_registered_model(self.model_name)
        except MlflowException as exc:
            if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
                raise
            self.client.create_registered_model(self.model_name, description=description)
            return
        if description and not model.description:
            self.client.update_registered_model(self.model_name, description=description)

    def register(self, run: LoggedRun, tags: dict[str, str]) -> str:
        self.ensure_model()
        mv = self.client.create_model_version(
            self.model_name,
            source=run.model_uri,
            run_id=run.run_id,
            tags={**run.contract_tags, **tags},
            model_id=run.model_id,
            await_creation_for=REGISTRATION_WAIT_SECONDS,
        )
        return str(mv.version)

    def version(self, version: str) -> VersionInfo:
        return version_info(self.client.get_model_version(self.model_name, version))

    def versions(self) -> list[VersionInfo]:
        """A version search leaves the aliases out; the registered model has them."""
        found = self.client.search_model_versions(f"name='{self.model_name}'")
        if not found:
            return []
        aliases: dict[str, list[str]] = {}
        for alias, version in self.client.get_registered_model(self.model_name).aliases.items():
            aliases.setdefault(str(version), []).append(alias)
        infos = (
            replace(version_info(mv), aliases=tuple(sorted(aliases.get(str(mv.version), ()))))
            for mv in found
        )
        return sorted(infos, key=lambda v: int(v.version))

    def by_alias(self, alias: str) -> VersionInfo | None:
        try:
            return version_info(self.client.get_model_version_by_alias(self.model_name, alias))
        except MlflowException as exc:
            if exc.error_code in _MISSING:
                return None
            raise

    def tag_version(self, version: str, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_model_version_tag(self.model_name, version, key, value)

    def load_model(self, ref: str) -> Pipeline:
        """Download the model's files with this client's server, then load them locally:
        `mlflow.sklearn.load_model("models:/...")` would resolve through the global URI."""
        uri = ref if ":" in ref else self.model_uri(ref)
        with tempfile.TemporaryDirectory() as tmp:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=self._download_uri(uri), dst_path=tmp, tracking_uri=self.tracking_uri
            )
            return mlflow.sklearn.load_model(local)

    def _set_alias(self, alias: str, version: str) -> None:
        self.client.set_registered_model_alias(self.model_name, alias, version)

    def _delete_alias(self, alias: str) -> None:
        self.client.delete_registered_model_alias(self.model_name, alias)

    # Helpers.

    def _download_uri(self, uri: str) -> str:
        """Where a `models:/` URI's files live (resolved with this client, not the global one);
        `runs:/RUN/NAME` is the run's logged model NAME when it has one."""
        run_model = _RUN_MODEL_URI.match(uri)
        if run_model is not None:
            return self._run_model_location(uri, run_model)
        if not uri.startswith("models:/"):
            return uri
        found = get_model_name_and_version(self.client, uri)
        if len(found) == 1:
            return self.client.get_logged_model(found[0]).artifact_location
        name, version = found
        return self.client.get_model_version_download_uri(name, version)

    def _run_model_location(self, uri: str, match: re.Match[str]) -> str:
        run = self.client.get_run(match["run_id"])
        found = self.client.search_logged_models(
            experiment_ids=[run.info.experiment_id],
            filter_string=f"source_run_id = '{match['run_id']}' AND name = '{match['name']}'",
            max_results=1,
        )
        if not found:
            return uri  # files logged into the run itself
        return found[0].artifact_location + (match["rest"] or "")

    def _experiment_id(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        try:
            return self.client.create_experiment(name)
        except MlflowException as exc:  # created concurrently by another step
            if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise
            return self.client.get_experiment_by_name(name).experiment_id

    @contextmanager
    def _run(self, experiment: str, run_name: str, tags: dict[str, str]) -> Iterator[RunRef]:
        """A run that ends FINISHED, or FAILED if the block raises (as `mlflow.start_run`)."""
        experiment_id = self._experiment_id(experiment)
        run = self.client.create_run(experiment_id, run_name=run_name, tags=resolve_tags(tags))
        ref = RunRef(run.info.run_id, experiment_id)
        try:
            yield ref
        except BaseException:
            self.client.set_terminated(ref.run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        self.client.set_terminated(ref.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _log_model(
        self, run: RunRef, model: Pipeline, params: dict[str, object], contract: Contract
    ) -> str:
        """What `mlflow.sklearn.log_model` does, without an active run: a LoggedModel linked
        to the run, the skops-serialized flavor with the contract's signature uploaded to it,
        and the contract file beside it (`models:/...` downloads carry their contract)."""
        logged = self.client.create_logged_model(
            run.experiment_id,
            name=MODEL_ARTIFACT,
            source_run_id=run.run_id,
            tags=contract_tags(contract),
            params={k: str(v) for k, v in params.items()},
        )
        try:
            self.client.log_outputs(run.run_id, [LoggedModelOutput(logged.model_id, step=0)])
            description = Model(
                artifact_path=logged.artifact_location,
                run_id=run.run_id,
                model_uuid=logged.model_id,
                model_id=logged.model_id,
            )
            with tempfile.TemporaryDirectory() as tmp:
                path = str(Path(tmp) / MODEL_ARTIFACT)
                mlflow.sklearn.save_model(
                    model,
                    path,
                    mlflow_model=description,
                    serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_SKOPS,
                    signature=model_signature(contract),
                    input_example=input_example(contract),
                    pyfunc_predict_fn="predict_proba",
                    skops_trusted_types=TRUSTED_TYPES,
                )
                contract_file = Path(path) / Path(CONTRACT_ARTIFACT).name
                contract_file.write_text(dump_contract(contract), encoding="utf-8")
                self.client.log_model_artifacts(logged.model_id, path)
        except BaseException:
            self.client.finalize_logged_model(logged.model_id, "FAILED")
            raise
        self.client.finalize_logged_model(logged.model_id, "READY")
        return logged.model_id

    def _log_bytes(self, run_id: str, content: bytes, artifact_file: str) -> None:
        path = Path(artifact_file)
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / path.name
            local.write_bytes(content)
            folder = str(path.parent) if str(path.parent) != "." else None
            self.client.log_artifact(run_id, str(local), folder)
