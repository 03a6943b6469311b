#!/bin/sh
# `mlflow server` configured by the same CHURNOPS_* variables as `churnops up`; the defaults keep
# SQLite and artifacts on /var/lib/mlflow (mount a volume there).
# With CHURNOPS_MLFLOW_AUTH (default true) it runs MLflow's auth app (`--app-name basic-auth`):
# MLFLOW_AUTH_ADMIN_PASSWORD and MLFLOW_FLASK_SERVER_SECRET_KEY must be set (from a Secret), and
# the users database is CHURNOPS_MLFLOW_AUTH_DATABASE_URI, by default next to a SQLite store.
set -eu
# The job runner (huey consumers) serves GenAI features churnops does not use.
export MLFLOW_SERVER_ENABLE_JOB_EXECUTION="${MLFLOW_SERVER_ENABLE_JOB_EXECUTION:-false}"
# From the environment, not the command line: the URL may carry the database password.
store="${CHURNOPS_MLFLOW_BACKEND_STORE_URI:-sqlite:////var/lib/mlflow/mlflow.db}"
export MLFLOW_BACKEND_STORE_URI="$store"

auth="$(printf '%s' "${CHURNOPS_MLFLOW_AUTH:-true}" | tr '[:upper:]' '[:lower:]')"
case "$auth" in
  1 | true | t | yes | y | on)
    : "${MLFLOW_AUTH_ADMIN_PASSWORD:?is required with CHURNOPS_MLFLOW_AUTH (the first admin login)}"
    : "${MLFLOW_FLASK_SERVER_SECRET_KEY:?is required with CHURNOPS_MLFLOW_AUTH (the same on every replica)}"
    case "$store" in
      sqlite:///*) users_default="sqlite:///$(dirname "${store#sqlite:///}")/auth.db" ;;
      *) users_default="" ;;
    esac
    users="${CHURNOPS_MLFLOW_AUTH_DATABASE_URI:-$users_default}"
    : "${users:?CHURNOPS_MLFLOW_AUTH_DATABASE_URI is required when the store is not SQLite}"
    export MLFLOW_AUTH_CONFIG_PATH="${MLFLOW_AUTH_CONFIG_PATH:-${TMPDIR:-/tmp}/churnops-mlflow-auth.ini}"
    # The file names the users database (with its password): readable by this user only.
    (umask 077 && cat >"$MLFLOW_AUTH_CONFIG_PATH" <<EOF
[mlflow]
default_permission = READ
database_uri = $users
admin_username = admin
authorization_function = mlflow.server.auth:authenticate_request_basic_auth
auth_cache_ttl_seconds = 60
EOF
    )
    set -- --app-name basic-auth
    ;;
  *) set -- ;;
esac

exec mlflow server \
  --artifacts-destination "${CHURNOPS_MLFLOW_ARTIFACTS_DESTINATION:-/var/lib/mlflow/artifacts}" \
  --serve-artifacts \
  --host 0.0.0.0 \
  --port "${CHURNOPS_MLFLOW_PORT:-5000}" \
  --workers "${CHURNOPS_MLFLOW_WORKERS:-1}" \
  "$@"
