"""The Dockerfile keeps its promises. There is no Docker engine where the tests run, so the image is
not built here; instead its start command runs with its environment against a real database, and
the rest (an exact base image, a non-root user, the data volume) is read from the file."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import httpx

from tests.e2e.server import TREEGATE, clean_env, free_port, run_cli, server_process

DOCKERFILE = (Path(__file__).resolve().parent.parent / "Dockerfile").read_text()


def instructions() -> list[tuple[str, str]]:
    """(instruction, arguments), continuation lines joined, comments left out."""
    joined = re.sub(r"\\\n\s*", " ", DOCKERFILE)
    return [
        (line.split(" ", 1)[0], line.split(" ", 1)[1])
        for line in joined.splitlines()
        if line and not line.startswith("#") and " " in line
    ]


def runtime_stage() -> list[tuple[str, str]]:
    found = instructions()
    start = max(i for i, (name, _) in enumerate(found) if name == "FROM")
    return found[start:]


def runtime_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for name, arguments in runtime_stage():
        if name == "ENV":
            for word in shlex.split(arguments):
                name_, value = word.split("=", 1)
                env[name_] = value
    return env


def test_the_base_image_is_an_exact_python_and_debian_release() -> None:
    (argument,) = [a for n, a in instructions() if n == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm", argument), argument
    assert [a for n, a in instructions() if n == "FROM"] == [
        "${PYTHON_IMAGE} AS build",
        "${PYTHON_IMAGE} AS runtime",
    ]


def test_it_runs_as_uid_10001_with_a_data_volume_in_production_mode() -> None:
    stage = dict(runtime_stage())
    assert stage["USER"] == "10001:10001"
    assert "--uid 10001" in stage["RUN"]
    assert stage["VOLUME"] == "/data"
    env = runtime_env()
    assert env["TREEGATE_ENV"] == "production"
    assert env["TREEGATE_DATABASE_URL"] == "sqlite:////data/treegate.db"
    assert float(env["TREEGATE_MIGRATE_WAIT_S"]) > 0


def test_it_installs_what_make_run_installs() -> None:
    makefile = (Path(__file__).resolve().parent.parent / "Makefile").read_text()
    assert "sync --frozen --no-dev" in makefile.split("$(RUN_STAMP):", 1)[1].split("\n\n")[0]
    runs = [a for n, a in instructions() if n == "RUN" and "uv sync" in a]
    assert runs
    assert all("--frozen --no-dev" in a for a in runs)


def test_its_start_command_migrates_serves_in_production_and_stops_cleanly(tmp_path: Path) -> None:
    (cmd,) = [json.loads(a) for n, a in runtime_stage() if n == "CMD"]
    assert cmd[:2] == ["sh", "-c"]
    env = clean_env() | runtime_env()
    env |= {
        # The image's paths, mapped onto this checkout: its virtualenv, a scratch /data.
        "PATH": f"{Path(TREEGATE).parent}:{clean_env()['PATH']}",
        "TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'treegate.db'}",
        "TREEGATE_HOST": "127.0.0.1",
    }
    port = free_port()
    with server_process(env, tmp_path / "server.log", port, command=cmd) as server:
        # What the README tells an operator to run in the container: create a key.
        created = run_cli(env, "keys", "create", "--name", "ops", "--role", "admin")
        assert created.returncode == 0, created.stderr
        key = created.stdout.strip().splitlines()[-1]
        query = {"query": "{ treeStateCounts { count } }"}
        anonymous = httpx.post(f"{server.base}/graphql", json=query)
        keyed = httpx.post(
            f"{server.base}/graphql", json=query, headers={"Authorization": f"Bearer {key}"}
        )
        page = httpx.get(f"{server.base}/graphql", headers={"Accept": "text/html"})
        # The image's HEALTHCHECK, as written, against this server.
        (healthcheck,) = [a for n, a in runtime_stage() if n == "HEALTHCHECK"]
        probe = json.loads(healthcheck.split(" CMD ", 1)[1])
        assert probe[0] == "python"
        flag, script = probe[1:]
        checked = subprocess.run(
            [sys.executable, flag, script.replace("127.0.0.1:8000", f"127.0.0.1:{port}")],
            timeout=30,
            check=False,
        )
    assert "migrated sqlite" in (tmp_path / "server.log").read_text()
    assert anonymous.status_code == 401  # production: no anonymous access
    assert keyed.status_code == 200
    assert keyed.json()["data"]["treeStateCounts"] == []
    assert page.status_code != 200 or "graphiql" not in page.text.lower()  # no GraphiQL
    assert checked.returncode == 0
