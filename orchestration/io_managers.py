"""Where asset values live between ops. In one process they stay on the local disk (Dagster's
filesystem IO manager under DAGSTER_HOME); once every op is a container or a pod of its own,
they go to an object store, so no volume has to be shared between ops (`CHURNOPS_EXECUTOR`)."""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

import dagster as dg

from churnops.settings import ENV_PREFIX, Settings

ASSET_STORAGE_VARIABLE = f"{ENV_PREFIX}ASSET_STORAGE_URL"
# Executors whose ops do not share a process, so not a disk either.
DISTRIBUTED_EXECUTORS = ("docker", "k8s")


class BucketLocation(NamedTuple):
    bucket: str
    prefix: str


def parse_storage_url(url: str) -> BucketLocation:
    """`s3://bucket/some/prefix` -> (bucket, prefix); anything else is a configuration error
    naming the variable."""
    parts = urlsplit(url.strip())
    prefix = parts.path.strip("/")
    if parts.scheme != "s3" or not parts.netloc or not prefix:
        raise ValueError(
            f"{ASSET_STORAGE_VARIABLE} must look like s3://BUCKET/PREFIX (a prefix keeps asset "
            f"values apart from other objects in the bucket), got {url!r}"
        )
    return BucketLocation(parts.netloc, prefix)


def select_io_manager(settings: Settings) -> dg.ConfigurableIOManager | None:
    """The object-store IO manager under the docker and k8s executors; None keeps Dagster's
    default (the filesystem IO manager) for the in-process executor."""
    if settings.executor not in DISTRIBUTED_EXECUTORS:
        return None
    if not settings.asset_storage_url:
        raise ValueError(
            f"{ENV_PREFIX}EXECUTOR={settings.executor} runs every op in its own container or pod: "
            f"set {ASSET_STORAGE_VARIABLE}=s3://BUCKET/PREFIX for the asset values they hand on"
        )
    location = parse_storage_url(settings.asset_storage_url)
    # Imported here, not at the top: dagster-aws comes with the `docker` and `k8s` extras,
    # installed only where ops run in containers or pods (the orchestration image).
    from dagster_aws.s3 import S3PickleIOManager, S3Resource

    # No credentials in the config: boto3 reads AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or a
    # role) from the environment, so no secret shows in the Dagster UI.
    return S3PickleIOManager(
        s3_resource=S3Resource(endpoint_url=settings.object_store_endpoint_url),
        s3_bucket=location.bucket,
        s3_prefix=location.prefix,
    )
