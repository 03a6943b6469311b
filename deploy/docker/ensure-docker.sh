#!/usr/bin/env bash
# Makes Docker usable on a Debian machine: installs docker.io and docker-compose from apt when
# missing and starts dockerd when no daemon answers (log: /var/log/dockerd.log). Needs root for
# either step; does nothing when `docker info` already works.
set -euo pipefail

if docker info >/dev/null 2>&1 && { docker compose version || docker-compose version; } >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "Docker is not usable and installing/starting it needs root" >&2
  exit 1
fi

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 \
  || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing ${missing[*]} from apt"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! docker info >/dev/null 2>&1; then
  echo "starting dockerd"
  setsid dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  for _ in $(seq 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
fi
docker info >/dev/null 2>&1 || { tail -20 /var/log/dockerd.log >&2; exit 1; }
