# The MLflow server (tracking + registry + artifact proxy + UI) with the Postgres driver.
ARG CORE_IMAGE=churnops/core:dev
FROM ${CORE_IMAGE}

USER root
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
RUN churnops-lock-install mlflow \
 && mkdir -p /var/lib/mlflow && chown churnops:churnops /var/lib/mlflow

COPY deploy/docker/mlflow-server.sh /usr/local/bin/churnops-mlflow-server
USER churnops
EXPOSE 5000
CMD ["churnops-mlflow-server"]
