# Dagster user code (gRPC code server), webserver and daemon: one image, three commands; with
# CHURNOPS_EXECUTOR=docker the same image also runs every op in its own container.
ARG CORE_IMAGE=churnops/core:dev
FROM ${CORE_IMAGE}

USER root
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
RUN churnops-lock-install orchestration \
 && mkdir -p /var/lib/dagster && chown churnops:churnops /var/lib/dagster

COPY deploy/docker/dagster/ /opt/dagster/
COPY churnops/ /app/churnops/
COPY registry/ /app/registry/
COPY orchestration/ /app/orchestration/
RUN python -m compileall -q /app

# Instance config and workspace are in the image; run storage is Postgres, asset values and
# compute logs go to /var/lib/dagster (a volume shared with the op containers).
ENV DAGSTER_HOME=/opt/dagster/home
ARG GIT_REVISION=unknown
ENV CHURNOPS_GIT_REVISION=${GIT_REVISION}
USER churnops
EXPOSE 3000 4000
CMD ["dagster", "api", "grpc", "-m", "orchestration.definitions", "-h", "0.0.0.0", "-p", "4000"]
