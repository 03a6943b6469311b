#!/usr/bin/env bash
# Builds every churnops image: churnops/{core,orchestration,serving,mlflow,s3,postgres}:$TAG.
#   deploy/docker/build.sh            base from a registry if BASE_IMAGE is set, else debootstrap
#   BASE_IMAGE=python:3.11-slim deploy/docker/build.sh
# core (venv + core deps from uv.lock) is built once; the four Python images add one layer of
# their extras on top of it and are built in parallel with postgres. Logs: $LOG_DIR/*.log.
set -euo pipefail
cd "$(dirname "$0")/../.."

tag="${TAG:-dev}"
log_dir="${LOG_DIR:-.churn/docker-build}"
mkdir -p "$log_dir"

if [ -z "${BASE_IMAGE:-}" ]; then
  BASE_IMAGE=churnops/base:bookworm
  deploy/docker/build-base-image.sh "$BASE_IMAGE"
fi

# Forward package-index overrides only when the host uses them (index URLs, not credentials).
index_args=()
for var in PIP_INDEX_URL UV_DEFAULT_INDEX; do
  if [ -n "${!var:-}" ]; then index_args+=(--build-arg "$var=${!var}"); fi
done

build() {  # build NAME [docker build args...]
  local name="$1"
  shift
  local start=$SECONDS
  if ! docker build --force-rm -f "deploy/docker/$name.Dockerfile" -t "churnops/$name:$tag" \
    "${index_args[@]}" "$@" . >"$log_dir/$name.log" 2>&1; then
    echo "build of churnops/$name:$tag failed; last lines of $log_dir/$name.log:" >&2
    tail -30 "$log_dir/$name.log" >&2
    return 1
  fi
  echo "built churnops/$name:$tag in $((SECONDS - start))s"
}

revision="$(git rev-parse HEAD 2>/dev/null || echo unknown)"
core=(--build-arg "CORE_IMAGE=churnops/core:$tag")

build postgres --build-arg "BASE_IMAGE=$BASE_IMAGE" &
pids=($!)
if ! build core --build-arg "BASE_IMAGE=$BASE_IMAGE"; then
  wait
  exit 1
fi
build orchestration "${core[@]}" --build-arg "GIT_REVISION=$revision" &
pids+=($!)
build mlflow "${core[@]}" &
pids+=($!)
build serving "${core[@]}" &
pids+=($!)
build s3 "${core[@]}" &
pids+=($!)

failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
exit "$failed"
