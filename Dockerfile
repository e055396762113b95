# syntax=docker/dockerfile:1.7
# Production Airflow image with neve and its task environments.
#
# The envs are built by the same command as on a laptop and in CI,
# `neve env build --locked`, from the committed envs/*.lock, so prod runs exactly
# what was tested. uv's cache is a BuildKit cache mount: after a lock change only
# the changed packages are downloaded, and the cache never lands in the image.
#
#   DOCKER_BUILDKIT=1 docker build -t neve-airflow .
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}

ARG AIRFLOW_VERSION
# Extra interpreters the declared envs ask for (legacy: 3.10), fetched prebuilt by uv
# instead of compiled from source in the image.
ARG EXTRA_PYTHONS="3.10"

# NEVE_PROJECT lets neve.envs.python("taxi") find the envs from the DAGs folder.
# UV_LINK_MODE=copy: hard links cannot cross from the cache mount into the image.
ENV NEVE_PROJECT=/opt/neve \
    UV_CACHE_DIR=/home/airflow/.cache/uv \
    UV_LINK_MODE=copy \
    UV_PYTHON_INSTALL_DIR=/opt/neve/.python \
    PIP_NO_CACHE_DIR=1

USER 0
RUN mkdir -p /opt/neve && chown airflow:root /opt/neve
USER 50000
WORKDIR /opt/neve

# Dependencies change less often than DAGs: copy what the envs depend on first.
COPY --chown=airflow:root pyproject.toml uv.lock README.md ./
COPY --chown=airflow:root src/ src/
COPY --chown=airflow:root envs/ envs/

# neve with its Airflow provider goes into Airflow's own Python, Airflow kept at the base version.
RUN --mount=type=cache,target=/home/airflow/.cache/pip,uid=50000,gid=0 \
    pip install --compile "apache-airflow==${AIRFLOW_VERSION}" "/opt/neve[airflow]"

RUN --mount=type=cache,target=/home/airflow/.cache/uv,uid=50000,gid=0 \
    uv python install ${EXTRA_PYTHONS}

# The same command as dev and CI; --locked fails the build if a lock is out of date.
RUN --mount=type=cache,target=/home/airflow/.cache/uv,uid=50000,gid=0 \
    neve env build --locked taxi legacy && neve env list

COPY --chown=airflow:root dags/ /opt/airflow/dags/
