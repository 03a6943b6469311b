#!/usr/bin/env bash
# Builds a Debian bookworm base image with python3.11 + venv from the apt mirror (debootstrap)
# and imports it into Docker. For machines that cannot pull python:3.11-slim from a registry.
#   deploy/docker/build-base-image.sh [image]      default churnops/base:bookworm
# Set REBUILD=1 to replace an existing image; DEBIAN_MIRROR to override the mirror.
set -euo pipefail

image="${1:-churnops/base:bookworm}"
if [ -z "${REBUILD:-}" ] && docker image inspect "$image" >/dev/null 2>&1; then
  echo "base image $image exists (REBUILD=1 to rebuild)"
  exit 0
fi

# The first bookworm mirror apt already uses (deb822 or one-line format), else the default.
mirror_from_apt() {
  awk '/^URIs:/ {uri=$2} /^Suites:/ && /bookworm( |$)/ && uri !~ /security/ {print uri; exit}
       /^deb / && $3 == "bookworm" {print $2; exit}' \
    /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
    2>/dev/null || true
}
mirror="${DEBIAN_MIRROR:-$(mirror_from_apt)}"
mirror="${mirror:-http://deb.debian.org/debian}"

if ! command -v debootstrap >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null
fi

rootfs="$(mktemp -d /tmp/churnops-rootfs.XXXXXX)"
trap 'rm -rf "$rootfs"' EXIT

echo "debootstrap bookworm from $mirror"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  bookworm "$rootfs" "$mirror" >"$rootfs.log" 2>&1 || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"

cat >"$rootfs/etc/apt/sources.list" <<SOURCES
deb $mirror bookworm main
deb $mirror bookworm-updates main
SOURCES
# Trust the host's local CAs too (e.g. a TLS-inspecting egress proxy), so pip and apt inside
# image builds reach PyPI and the mirror the same way the host does. Certificates are public.
if compgen -G "/usr/local/share/ca-certificates/*.crt" >/dev/null; then
  cp /usr/local/share/ca-certificates/*.crt "$rootfs/usr/local/share/ca-certificates/"
  chroot "$rootfs" update-ca-certificates >/dev/null 2>&1
fi
# Runtime images need neither apt's package lists, caches nor documentation.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* \
  "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/*

tar -C "$rootfs" --numeric-owner -c . | docker import \
  --change 'ENV LANG=C.UTF-8' \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' \
  - "$image" >/dev/null
echo "built $image ($(docker image inspect -f '{{.Size}}' "$image" | numfmt --to=iec))"
