"""Asset values through a real S3-compatible server (the compose stack's: moto in server mode,
deploy/docker/s3-server.py, on 127.0.0.1): one run writes an asset value to the bucket, a later
run with a fresh IO manager loads it from there, as op containers and pods do."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import dagster as dg
import pytest

from churnops.settings import Settings
from launcher.processes import ManagedProcess, free_port
from launcher.stack import REPO_ROOT
from orchestration.io_managers import select_io_manager

pytestmark = pytest.mark.integration

BUCKET = "churnops"


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    server = ManagedProcess(
        f"s3-{port}",
        [sys.executable, str(REPO_ROOT / "deploy" / "docker" / "s3-server.py")],
        tmp_path_factory.mktemp("s3") / "s3.log",
        # 200 only once the bucket exists.
        health_url=f"http://127.0.0.1:{port}/{BUCKET}",
        env={"S3_BUCKETS": BUCKET, "S3_PORT": str(port), "S3_HOST": "127.0.0.1", "PATH": ""},
    )
    with server:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the stack's containers get: keys (moto checks none) and a region."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "churnops")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "churnops-local")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@dg.asset
def customers_seen() -> list[int]:
    return [3, 1, 2]


@dg.asset
def customers_ranked(customers_seen: list[int]) -> list[int]:
    return sorted(customers_seen)


def test_a_later_run_loads_the_value_an_earlier_run_put_in_the_bucket(
    s3_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    def io_manager() -> dg.ConfigurableIOManager:
        settings = Settings(
            executor="docker",
            asset_storage_url=f"s3://{BUCKET}/dagster",
            object_store_endpoint_url=s3_endpoint,
            home=tmp_path,
        )
        return select_io_manager(settings)

    assets = [customers_seen, customers_ranked]
    (tmp_path / "dagster").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster")) as instance:
        first = dg.materialize(
            assets,
            selection=[customers_seen],
            resources={"io_manager": io_manager()},
            instance=instance,
        )
        assert first.success
        second = dg.materialize(
            assets,
            selection=[customers_ranked],
            resources={"io_manager": io_manager()},
            instance=instance,
        )
        assert second.success
        assert second.output_for_node("customers_ranked") == [1, 2, 3]

    client = boto3.client("s3", endpoint_url=s3_endpoint)
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=BUCKET)["Contents"]}
    assert {"dagster/customers_seen", "dagster/customers_ranked"} <= keys
    # Nothing went to the local disk's default storage.
    assert not (tmp_path / "dagster" / "storage" / "customers_seen").exists()


def test_a_missing_bucket_fails_the_run_naming_it(
    s3_endpoint: str, aws_env: None, tmp_path: Path
) -> None:
    settings = Settings(
        executor="k8s",
        asset_storage_url="s3://no-such-bucket/dagster",
        object_store_endpoint_url=s3_endpoint,
    )
    with dg.instance_for_test(temp_dir=str(tmp_path)) as instance:
        result = dg.materialize(
            [customers_seen],
            resources={"io_manager": select_io_manager(settings)},
            instance=instance,
            raise_on_error=False,
        )
    assert not result.success
    errors = [str(e.event_specific_data.error) for e in result.all_events if e.is_failure]
    assert errors and all("NoSuchBucket" in error for error in errors), errors
