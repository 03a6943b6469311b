# A local S3-compatible object store for the compose stack (moto in server mode): where asset
# values pass from one op container to the next, so no volume is shared between them. Objects
# live in memory, for as long as the container; use MinIO or S3 for anything durable.
ARG CORE_IMAGE=churnops/core:dev
FROM ${CORE_IMAGE}

USER root
ARG PIP_INDEX_URL
ARG UV_DEFAULT_INDEX
RUN churnops-lock-install s3
COPY deploy/docker/s3-server.py /usr/local/bin/churnops-s3-server
USER churnops
EXPOSE 9000
CMD ["churnops-s3-server"]
