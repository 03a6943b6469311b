#!/usr/bin/env bash
# The local multi-container stack (compose.yaml) from the images of build.sh:
#   deploy/docker/stack.sh up                 start it, wait until healthy, print the URLs
#   deploy/docker/stack.sh down [--volumes]   remove containers (incl. op containers) and network
#   deploy/docker/stack.sh ps | logs [service...]
# STACK_NAME (default churnops) names the project, network and volumes; TAG picks the images;
# CHURNOPS_{DAGSTER,MLFLOW,BENTO}_PORT pick the published loopback ports.
set -euo pipefail
cd "$(dirname "$0")/../.."

export STACK_NAME="${STACK_NAME:-churnops}" TAG="${TAG:-dev}"
dagster_port="${CHURNOPS_DAGSTER_PORT:-3000}"
mlflow_port="${CHURNOPS_MLFLOW_PORT:-5000}"
bento_port="${CHURNOPS_BENTO_PORT:-3001}"

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null 2>&1; then
  compose=(docker-compose)
else
  echo "needs docker compose: deploy/docker/ensure-docker.sh installs it (apt docker-compose)" >&2
  exit 1
fi
compose+=(-p "$STACK_NAME" -f deploy/docker/compose.yaml)

# The database password and MLflow's (admin, Flask secret, the two service accounts) are
# generated once per stack into a file only its owner reads, kept out of images and the repo
# (CHURNOPS_HOME is git-ignored); a file from an older stack gains the missing ones.
secrets_dir="${CHURNOPS_HOME:-.churn}/docker"
secrets="$secrets_dir/$STACK_NAME.env"
mkdir -p "$secrets_dir"
(umask 077 && touch "$secrets")
chmod 600 "$secrets"
for name in POSTGRES_PASSWORD MLFLOW_ADMIN_PASSWORD MLFLOW_FLASK_SECRET_KEY \
  MLFLOW_TRAINING_PASSWORD MLFLOW_SERVING_PASSWORD; do
  if ! grep -q "^$name=" "$secrets"; then
    echo "$name=$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')" >>"$secrets"
  fi
done
set -a
# shellcheck disable=SC1090
. "$secrets"
set +a
DOCKER_GID="$(stat -c %g /var/run/docker.sock 2>/dev/null || echo 0)"
export DOCKER_GID

wait_http() {  # wait_http URL SECONDS
  local deadline=$((SECONDS + $2))
  until python3 -c "import urllib.request as u; u.urlopen('$1', timeout=2)" 2>/dev/null; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "$1 did not answer within $2s" >&2
      return 1
    fi
    sleep 1
  done
}

remove_op_containers() {
  docker ps -aq --filter label=io.churnops.role=dagster-step --filter "network=$STACK_NAME" \
    | xargs -r docker rm -f >/dev/null
}

case "${1:-}" in
  up)
    "${compose[@]}" up -d
    wait_http "http://127.0.0.1:$mlflow_port/health" 180
    wait_http "http://127.0.0.1:$dagster_port/server_info" 240
    wait_http "http://127.0.0.1:$bento_port/healthz" 180
    echo "Dagster   http://127.0.0.1:$dagster_port"
    echo "MLflow    http://127.0.0.1:$mlflow_port (user admin, password MLFLOW_ADMIN_PASSWORD in $secrets)"
    echo "Bento API http://127.0.0.1:$bento_port/docs (ready once a @champion exists)"
    ;;
  down)
    remove_op_containers
    down_args=(down --remove-orphans)
    if [ "${2:-}" = "--volumes" ]; then down_args+=(--volumes); fi
    # The network can outlive its containers by a moment ("has active endpoints"): remove
    # whatever is still attached and try once more.
    if ! "${compose[@]}" "${down_args[@]}"; then
      docker ps -aq --filter "network=$STACK_NAME" | xargs -r docker rm -f >/dev/null
      sleep 2
      "${compose[@]}" "${down_args[@]}"
    fi
    if [ "${2:-}" = "--volumes" ]; then rm -f "$secrets"; fi
    ;;
  ps | logs)
    "${compose[@]}" "$@"
    ;;
  *)
    echo "usage: $0 up | down [--volumes] | ps | logs [service...]" >&2
    exit 2
    ;;
esac
