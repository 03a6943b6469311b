"""The executor is chosen by CHURNOPS_EXECUTOR; the same jobs run under each."""

from __future__ import annotations

import dagster as dg
import pytest

from churnops.settings import Settings
from orchestration.definitions import defs
from orchestration.executors import (
    STEP_CONTAINER_LABEL,
    docker_executor_config,
    forwarded_env_vars,
    select_executor,
)
from orchestration.jobs import train_and_promote

pytestmark = pytest.mark.unit

ENVIRON = {
    "CHURNOPS_MLFLOW_TRACKING_URI": "http://mlflow:5000",
    "DAGSTER_PG_PASSWORD": "s3cret",
    "HOME": "/home/churnops",
}


def test_default_is_the_in_process_executor() -> None:
    assert Settings().executor == "in_process"
    assert select_executor(Settings(), ENVIRON) is dg.in_process_executor
    assert defs.resolve_job_def("train_and_promote").executor_def is dg.in_process_executor


def test_executor_setting_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_EXECUTOR", "docker")
    monkeypatch.setenv("CHURNOPS_DOCKER_VOLUMES", '["churnops-dagster:/var/lib/dagster"]')
    settings = Settings()
    assert settings.executor == "docker"
    assert settings.docker_volumes == ["churnops-dagster:/var/lib/dagster"]


def test_docker_executor_forwards_names_network_volumes_and_image() -> None:
    settings = Settings(
        executor="docker",
        executor_image="churnops/dagster:dev",
        docker_network="churnops",
        docker_volumes=["churnops-dagster:/var/lib/dagster"],
    )
    executor = select_executor(settings, ENVIRON)
    assert executor.name == "docker"
    assert _resolved_config(executor)["image"] == "churnops/dagster:dev"
    config = docker_executor_config(settings, ENVIRON)
    assert config == {
        "env_vars": ["CHURNOPS_MLFLOW_TRACKING_URI", "DAGSTER_PG_PASSWORD"],
        "container_kwargs": {
            "volumes": ["churnops-dagster:/var/lib/dagster"],
            "labels": {STEP_CONTAINER_LABEL: "dagster-step"},
        },
        "image": "churnops/dagster:dev",
        "networks": ["churnops"],
    }
    assert "s3cret" not in repr(config)


def _resolved_config(executor: dg.ExecutorDefinition) -> dict:
    """The config the executor runs with: what `.configured(...)` baked in, plus defaults."""
    resolved = executor.config_schema.resolve_config({})
    assert resolved.success, resolved.errors
    return resolved.value["config"]


def test_k8s_executor_takes_the_image_and_inherits_the_rest() -> None:
    executor = select_executor(Settings(executor="k8s", executor_image="churnops/dagster:1"), {})
    assert executor.name == "k8s"
    config = _resolved_config(executor)
    assert config["job_image"] == "churnops/dagster:1"
    # Namespace, env config maps and secrets come from the Helm run launcher, not from here.
    assert "job_namespace" not in config and "env_secrets" not in config


def test_k8s_executor_without_an_image_uses_the_code_location_image() -> None:
    config = _resolved_config(select_executor(Settings(executor="k8s"), {}))
    assert "job_image" not in config


def test_only_platform_and_dagster_variables_are_forwarded() -> None:
    assert forwarded_env_vars(ENVIRON) == ["CHURNOPS_MLFLOW_TRACKING_URI", "DAGSTER_PG_PASSWORD"]


def test_op_containers_get_the_mlflow_login_of_the_run_worker() -> None:
    environ = {**ENVIRON, "MLFLOW_TRACKING_USERNAME": "u", "MLFLOW_TRACKING_PASSWORD": "p"}
    assert forwarded_env_vars(environ) == [
        "CHURNOPS_MLFLOW_TRACKING_URI",
        "DAGSTER_PG_PASSWORD",
        "MLFLOW_TRACKING_PASSWORD",
        "MLFLOW_TRACKING_USERNAME",
    ]


@pytest.mark.parametrize("executor", ["in_process", "docker", "k8s"])
def test_the_same_jobs_resolve_under_every_executor(executor: str) -> None:
    chosen = select_executor(Settings(executor=executor), ENVIRON)
    rebuilt = dg.Definitions(
        assets=defs.assets,
        asset_checks=defs.asset_checks,
        jobs=[train_and_promote],
        resources=defs.resources,
        executor=chosen,
    ).resolve_job_def("train_and_promote")
    default = defs.resolve_job_def("train_and_promote")
    assert rebuilt.executor_def.name == chosen.name
    assert rebuilt.asset_layer.executable_asset_keys == default.asset_layer.executable_asset_keys
