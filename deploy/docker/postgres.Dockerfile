# PostgreSQL from Debian's `postgresql` package, for the stack's MLflow, Dagster and prediction
# store databases (no registry image needed). Data in /var/lib/postgresql/data (a volume).
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# No default cluster from the package: the entrypoint initialises the volume on first start.
RUN mkdir -p /etc/postgresql-common \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.conf \
 && apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /usr/share/doc/* /usr/share/man/* \
 && ln -s /usr/lib/postgresql/*/bin/* /usr/local/bin/ \
 && mkdir -p /var/lib/postgresql/data && chown postgres:postgres /var/lib/postgresql/data

COPY deploy/docker/postgres/entrypoint.sh /usr/local/bin/churnops-postgres
ENV PGDATA=/var/lib/postgresql/data LANG=C.UTF-8
USER postgres
EXPOSE 5432
CMD ["churnops-postgres"]
