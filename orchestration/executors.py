"""The executor is configuration, not code: `CHURNOPS_EXECUTOR` runs the same assets in one
process, in one Docker container per op, or in one Kubernetes Job per op."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from churnops.settings import Settings

# Op containers rebuild the code location and the Dagster instance from these variables, log in
# to MLflow (its auth app) as the run worker does, and reach the object store holding asset
# values with the AWS SDK's own variables (credentials, region, endpoint).
FORWARDED_ENV_PREFIXES = ("CHURNOPS_", "DAGSTER_", "AWS_")
FORWARDED_ENV_NAMES = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
# Marks op containers so tooling (stack.sh down, the acceptance test) can find them.
STEP_CONTAINER_LABEL = "io.churnops.role"


def forwarded_env_vars(environ: Mapping[str, str]) -> list[str]:
    """Names only: Dagster reads the values from the run worker's environment at launch, so no
    value (such as a database password) is written into the job definition."""
    return sorted(
        name
        for name in environ
        if name.startswith(FORWARDED_ENV_PREFIXES) or name in FORWARDED_ENV_NAMES
    )


def docker_executor_config(settings: Settings, environ: Mapping[str, str]) -> dict:
    """Config for `dagster_docker.docker_executor`: env, network and shared storage volumes."""
    config: dict = {
        "env_vars": forwarded_env_vars(environ),
        "container_kwargs": {
            "volumes": list(settings.docker_volumes),
            "labels": {STEP_CONTAINER_LABEL: "dagster-step"},
        },
    }
    if settings.executor_image:
        config["image"] = settings.executor_image
    if settings.docker_network:
        config["networks"] = [settings.docker_network]
    return config


def k8s_executor_config(settings: Settings) -> dict:
    """Config for `dagster_k8s.k8s_job_executor`; everything else (namespace, env config maps,
    secrets) is inherited from the K8sRunLauncher of the Helm deployment."""
    return {"job_image": settings.executor_image} if settings.executor_image else {}


def select_executor(settings: Settings, environ: Mapping[str, str]) -> dg.ExecutorDefinition:
    """The executor every job of the code location uses."""
    # Imported here, not at the top: dagster-docker and dagster-k8s are the optional `docker` and
    # `k8s` extras, installed only where ops run in containers or pods (the orchestration image).
    if settings.executor == "docker":
        from dagster_docker import docker_executor

        return docker_executor.configured(docker_executor_config(settings, environ))
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor.configured(k8s_executor_config(settings))
    # Embedded default: every op of a run in one process (no per-step interpreter start-up).
    return dg.in_process_executor
