# syntax=docker/dockerfile:1
# relayflow in a container. Build:  docker build -t relayflow .
# Run (one process, SQLite in the /data volume):
#   docker run -p 8080:8080 -v relayflow-data:/data relayflow
# Scale-out on PostgreSQL (db upgrade, 2 api, 2 workers, Prometheus): deploy/compose.yaml.

# --- build: wheels of relayflow and of every dependency (pinned in pyproject.toml) ---------
FROM python:3.11-slim AS build
# A compiler only for a dependency without a wheel for this platform; it stays in this stage.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
# relayflow's wheel carries its package data: console templates and static files, migrations.
# The otel extra too: traces switch on with OTEL_EXPORTER_OTLP_ENDPOINT, no other image needed.
RUN python -m pip wheel --no-cache-dir --wheel-dir /wheels '.[otel]'

# --- runtime: the wheels installed into a slim image, run as a non-root user --------------
FROM python:3.11-slim AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAYFLOW_DATABASE_URL=sqlite:////data/relayflow.db \
    RELAYFLOW_PORT=8080
RUN groupadd --system --gid 10001 relayflow \
    && useradd --system --uid 10001 --gid relayflow --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin relayflow \
    && mkdir /data \
    && chown relayflow:relayflow /data
# The wheels are mounted for the install only: they never become a layer of the image.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels 'relayflow[otel]'
USER relayflow
WORKDIR /data
# A named volume copies this directory's owner on first use, so the non-root user can write.
VOLUME ["/data"]
EXPOSE 8080
# No curl in slim images: the standard library asks /healthz (200 only when the database
# answers; urlopen raises on 503, and the exception exits 1).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('RELAYFLOW_PORT', '8080') + '/healthz', timeout=4)"]
# Exec form: relayflow is PID 1 and gets SIGTERM itself (then drains and exits 0).
CMD ["relayflow", "serve", "--host", "0.0.0.0"]
