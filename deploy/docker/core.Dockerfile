# Shared Python runtime of every churnops image: a venv holding the core dependencies from
# uv.lock, and a non-root user. dagster/mlflow/bento images build FROM it, so these layers are
# built and stored once. BASE_IMAGE: python:3.11-slim where a registry is reachable, else the
# debootstrap image from build-base-image.sh (both are Debian with python3 + venv).
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS lock
# Index overrides are forwarded only when the host uses them (see build.sh); never credentials.
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
ARG UV_VERSION=0.13.9
ENV UV_VERSION=${UV_VERSION}
COPY deploy/docker/lock-install.sh /usr/local/bin/churnops-lock-install
COPY pyproject.toml uv.lock /opt/churnops/lock/
RUN churnops-lock-install --export

FROM ${BASE_IMAGE}
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
ARG UV_VERSION=0.13.9
ENV UV_VERSION=${UV_VERSION} \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONPATH=/app \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LANG=C.UTF-8

RUN useradd --uid 10001 --user-group --create-home --home-dir /home/churnops churnops \
 && python3 -m venv --without-pip /opt/venv \
 && mkdir /app

COPY deploy/docker/lock-install.sh /usr/local/bin/churnops-lock-install
COPY --from=lock /opt/churnops/requirements/core.txt /opt/churnops/requirements/
RUN churnops-lock-install core
# The images' requirement sets, for their own dependency layer on top of this one.
COPY --from=lock /opt/churnops/requirements/ /opt/churnops/requirements/

WORKDIR /app
USER churnops
CMD ["python"]
