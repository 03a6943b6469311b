#!/bin/sh
# Lockfile-driven installs for the images, with uv in a throwaway venv (no installer is left in
# a runtime layer):
#   churnops-lock-install --export   uv.lock -> /opt/churnops/requirements/<image>.txt (hashed)
#   churnops-lock-install IMAGE      install that image's requirements into /opt/venv
# Exporting in its own stage means a pyproject change that leaves the locked set unchanged
# leaves the dependency layers cached.
set -eu
# The system CA store (not pip's/uv's bundled roots), so a local CA in the base image is honoured.
export PIP_CERT=/etc/ssl/certs/ca-certificates.crt SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
export UV_NATIVE_TLS=1 UV_NO_CACHE=1
requirements=/opt/churnops/requirements
tmp="$(mktemp -d)"
python3 -m venv "$tmp/uv"
"$tmp/uv/bin/pip" install --quiet --no-cache-dir --disable-pip-version-check "uv==${UV_VERSION}"
uv="$tmp/uv/bin/uv"

export_set() {  # export_set NAME [extra...]
  name="$1"
  shift
  extras=""
  for extra in "$@"; do extras="$extras --extra $extra"; done
  # shellcheck disable=SC2086  # one word per flag
  "$uv" export --project /opt/churnops/lock --frozen --no-dev --no-emit-project --no-header \
    --quiet $extras -o "$requirements/$name.txt"
}

if [ "${1:-}" = "--export" ]; then
  mkdir -p "$requirements"
  export_set core
  # The orchestration image runs ops in containers (compose) and pods (Helm): both clients.
  export_set orchestration orchestration docker k8s postgres
  export_set mlflow registry postgres
  export_set serving serving postgres
  export_set s3 s3-server
else
  "$uv" pip install --quiet --python /opt/venv/bin/python --no-deps --require-hashes \
    --compile-bytecode -r "$requirements/$1.txt"
fi
rm -rf "$tmp" /root/.cache
