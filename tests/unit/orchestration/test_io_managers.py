"""Asset values stay on the local disk in one process and go to an object store once ops run
in containers or pods of their own (CHURNOPS_EXECUTOR docker or k8s)."""

from __future__ import annotations

import pytest
from dagster_aws.s3 import S3PickleIOManager

from churnops.settings import Settings
from orchestration.definitions import build_resources
from orchestration.executors import forwarded_env_vars
from orchestration.io_managers import BucketLocation, parse_storage_url, select_io_manager

pytestmark = pytest.mark.unit


def test_the_in_process_executor_keeps_dagsters_filesystem_io_manager() -> None:
    settings = Settings(executor="in_process", asset_storage_url="s3://churnops/dagster")
    assert select_io_manager(settings) is None
    assert "io_manager" not in build_resources(settings)


@pytest.mark.parametrize("executor", ["docker", "k8s"])
def test_ops_apart_hand_values_on_through_the_bucket(executor: str) -> None:
    settings = Settings(
        executor=executor,
        asset_storage_url="s3://churnops-mlflow/dagster/assets/",
        object_store_endpoint_url="http://s3:9000",
    )
    io_manager = build_resources(settings)["io_manager"]
    assert isinstance(io_manager, S3PickleIOManager)
    assert (io_manager.s3_bucket, io_manager.s3_prefix) == ("churnops-mlflow", "dagster/assets")
    assert io_manager.s3_resource.endpoint_url == "http://s3:9000"
    # Credentials come from the AWS SDK's environment, never from (UI-visible) config.
    assert io_manager.s3_resource.aws_access_key_id is None
    assert io_manager.s3_resource.aws_secret_access_key is None


def test_the_endpoint_defaults_to_the_aws_sdks_own() -> None:
    settings = Settings(executor="k8s", asset_storage_url="s3://bucket/dagster")
    assert select_io_manager(settings).s3_resource.endpoint_url is None


@pytest.mark.parametrize("executor", ["docker", "k8s"])
def test_ops_apart_without_a_bucket_fail_at_load_naming_the_setting(executor: str) -> None:
    with pytest.raises(ValueError, match="CHURNOPS_ASSET_STORAGE_URL=s3://BUCKET/PREFIX"):
        build_resources(Settings(executor=executor))


def test_the_storage_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHURNOPS_ASSET_STORAGE_URL", "s3://churnops/dagster")
    monkeypatch.setenv("CHURNOPS_OBJECT_STORE_ENDPOINT_URL", "http://s3:9000")
    settings = Settings()
    assert settings.asset_storage_url == "s3://churnops/dagster"
    assert settings.object_store_endpoint_url == "http://s3:9000"


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("s3://churnops/dagster", BucketLocation("churnops", "dagster")),
        (" s3://b-1/a/b/ ", BucketLocation("b-1", "a/b")),
    ],
)
def test_storage_urls_split_into_bucket_and_prefix(url: str, expected: BucketLocation) -> None:
    assert parse_storage_url(url) == expected


@pytest.mark.parametrize(
    "url", ["s3://churnops", "s3://churnops/", "/var/lib/dagster", "gs://bucket/dagster", "s3:///x"]
)
def test_a_malformed_storage_url_is_refused_naming_the_variable(url: str) -> None:
    with pytest.raises(ValueError, match="CHURNOPS_ASSET_STORAGE_URL must look like"):
        parse_storage_url(url)


def test_op_containers_get_the_object_store_credentials_by_name() -> None:
    environ = {
        "AWS_ACCESS_KEY_ID": "key",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_ENDPOINT_URL": "http://s3:9000",
        "PATH": "/usr/bin",
    }
    assert forwarded_env_vars(environ) == [
        "AWS_ACCESS_KEY_ID",
        "AWS_ENDPOINT_URL",
        "AWS_SECRET_ACCESS_KEY",
    ]
