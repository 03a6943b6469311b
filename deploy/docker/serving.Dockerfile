# The prediction service: a Bento built with `bentoml build` from serving/bentofile.yaml and
# served the way a containerized Bento is (`bentoml serve $BENTO_PATH`), but from our own image
# rather than `bentoml containerize`: containerize needs buildx, pulls python:3.11-slim, adds
# build-essential and git to the runtime image and installs packages from the Bento's own
# requirements instead of uv.lock. Here the Bento runs on the shared core layers with the locked
# serving dependencies, offline from a local base image.
ARG CORE_IMAGE=churnops/core:dev
FROM ${CORE_IMAGE} AS serving

USER root
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
RUN churnops-lock-install serving

FROM serving AS build
# Throwaway stage: `bentoml build` records a pinned requirements lock in the Bento with uv.
ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
    UV_NATIVE_TLS=1 \
    PATH=/opt/venv/bin:/opt/uv/bin:/usr/local/bin:/usr/bin:/bin
RUN python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet "uv==${UV_VERSION}"
COPY churnops/ /src/churnops/
COPY registry/ /src/registry/
COPY serving/ /src/serving/
RUN BENTOML_HOME=/opt/bentoml bentoml build --output tag -f /src/serving/bentofile.yaml /src \
 && store=/opt/bentoml/bentos/churn_prediction \
 && cp -r "$store/$(cat "$store/latest")" /opt/bento \
 && python -m compileall -q /opt/bento/src

FROM serving
COPY --from=build /opt/bento /opt/bento
# The prediction journal (answered predictions the store does not have yet) lives on a volume
# of its own; made here so a fresh named volume inherits the owner.
RUN mkdir -p /var/lib/churnops/journal && chown churnops /var/lib/churnops/journal
# BentoML writes its home (tmp files, metrics) at runtime: keep it in the user's home.
ENV BENTO_PATH=/opt/bento \
    CHURNOPS_PREDICTION_JOURNAL=/var/lib/churnops/journal \
    BENTOML_CONTAINERIZED=true \
    BENTOML_HOME=/home/churnops/bentoml \
    CHURNOPS_HOME=/home/churnops/.churn \
    CHURNOPS_BENTO_PORT=3001
WORKDIR /opt/bento
USER churnops
EXPOSE 3001
CMD ["sh", "-c", "exec bentoml serve \"$BENTO_PATH\" --host 0.0.0.0 --port \"$CHURNOPS_BENTO_PORT\""]
