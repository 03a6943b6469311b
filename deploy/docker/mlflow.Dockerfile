# The MLflow server (tracking + registry + artifact proxy + UI) with the Postgres driver.
ARG CORE_IMAGE=churnops/core:dev
FROM ${CORE_IMAGE}

USER root
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
RUN churnops-lock-install mlflow \
 && mkdir -p /var/lib/mlflow && chown churnops:churnops /var/lib/mlflow

COPY deploy/docker/mlflow-server.sh /usr/local/bin/churnops-mlflow-server
# For the one-shot `python -m launcher.cli mlflow-accounts` (the service accounts of the auth app).
COPY churnops/ /app/churnops/
COPY registry/ /app/registry/
COPY launcher/ /app/launcher/
USER churnops
EXPOSE 5000
CMD ["churnops-mlflow-server"]
