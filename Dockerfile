# syntax=docker/dockerfile:1
# Treegate: multi-stage, slim, non-root, production mode. Installs exactly what uv.lock pins, as
# `make run` does (`uv sync --frozen --no-dev`). tests/test_dockerfile.py runs this file's start
# command with its environment against a real database, and checks what it promises below.

# An exact Python and Debian release: rebuilding gives the same base until this line changes.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /src
# Dependencies first, so that code changes do not re-install them.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY domain ./domain
COPY db ./db
COPY resolvers ./resolvers
COPY schema ./schema
COPY gql ./gql
RUN uv sync --frozen --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 treegate \
    && useradd --system --uid 10001 --gid treegate --home-dir /data --create-home treegate
COPY --from=build /app/.venv /app/.venv
# Production unless told otherwise: no GraphiQL, no introspection, no anonymous access. The
# database may start after the container: `treegate migrate` waits for it.
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TREEGATE_ENV=production \
    TREEGATE_HOST=0.0.0.0 \
    TREEGATE_PORT=8000 \
    TREEGATE_MIGRATE_WAIT_S=60 \
    TREEGATE_DATABASE_URL=sqlite:////data/treegate.db
WORKDIR /data
# The embedded SQLite database lives here: mount a volume to keep it (owned by uid 10001).
VOLUME /data
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
# On SIGTERM the server stops accepting, finishes what it holds within TREEGATE_SHUTDOWN_GRACE_S
# (20 s) and exits 0: give it longer than that (`docker stop -t 25`). `exec` makes it PID 1, so
# the signal reaches it. Migrations are idempotent: apply them (waiting up to
# TREEGATE_MIGRATE_WAIT_S for the database), then serve, as `make run` does.
STOPSIGNAL SIGTERM
CMD ["sh", "-c", "treegate migrate && exec treegate serve"]
