#!/usr/bin/env python3
"""The compose stack's S3-compatible object store: moto in server mode, with the buckets named
in S3_BUCKETS (space separated) made before it reports healthy (GET /BUCKET answers 200 only
once the bucket exists). Objects live in memory: they last as long as the container, which is
what asset values between ops need; point CHURNOPS_ASSET_STORAGE_URL and
CHURNOPS_OBJECT_STORE_ENDPOINT_URL at a durable store (MinIO, S3) to keep them longer.
    S3_BUCKETS="churnops" S3_PORT=9000 churnops-s3-server"""

from __future__ import annotations

import os
import signal

import boto3
from moto.server import ThreadedMotoServer


def main() -> None:
    port = int(os.environ.get("S3_PORT", "9000"))
    # Blocked before the server thread starts (it inherits the mask), then awaited: as PID 1 of
    # a container a default SIGTERM would be ignored and `docker stop` would wait for SIGKILL.
    # An ignored disposition inherited from the parent would discard them: reset it first.
    stop = {signal.SIGTERM, signal.SIGINT}
    for number in stop:
        signal.signal(number, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_BLOCK, stop)
    server = ThreadedMotoServer(ip_address=os.environ.get("S3_HOST", "0.0.0.0"), port=port)  # noqa: S104 - inside its container
    server.start()
    # moto does not check signatures; any key signs a request it accepts.
    client = boto3.client(
        "s3",
        endpoint_url=f"http://127.0.0.1:{port}",
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106 - moto checks no credentials
    )
    for bucket in os.environ.get("S3_BUCKETS", "").split():
        client.create_bucket(Bucket=bucket)
        print(f"bucket {bucket} ready", flush=True)
    signal.sigwait(stop)
    # Nothing to flush (objects are in memory), and the handler threads of clients' open
    # keep-alive connections must not hold the exit.
    os._exit(0)


if __name__ == "__main__":
    main()
