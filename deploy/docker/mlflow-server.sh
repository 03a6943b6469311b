#!/bin/sh
# `mlflow server` configured by the same CHURNOPS_* variables as `churnops up`; the defaults keep
# SQLite and artifacts on /var/lib/mlflow (mount a volume there).
set -eu
# The job runner (huey consumers) serves GenAI features churnops does not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
exec mlflow server \
  --backend-store-uri "${CHURNOPS_MLFLOW_BACKEND_STORE_URI:-sqlite:////var/lib/mlflow/mlflow.db}" \
  --artifacts-destination "${CHURNOPS_MLFLOW_ARTIFACTS_DESTINATION:-/var/lib/mlflow/artifacts}" \
  --serve-artifacts \
  --host 0.0.0.0 \
  --port "${CHURNOPS_MLFLOW_PORT:-5000}" \
  --workers "${CHURNOPS_MLFLOW_WORKERS:-1}"
