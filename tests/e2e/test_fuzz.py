"""Schemathesis in GraphQL mode against a real `treegate serve`, as an admin: every operation
(queries and mutations), 100 generated documents each, a fixed seed. No 5xx, and no unexpected
error in place of a typed result (tests/e2e/fuzz_checks.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from graphql import build_schema

from tests.e2e.server import migrate_and_seed, run_cli, serving

pytestmark = pytest.mark.e2e

SCHEMATHESIS = str(Path(sys.executable).with_name("schemathesis"))
SEED = 20261126
EXAMPLES = 100


def _operations() -> int:
    """The Query and Mutation fields (schemathesis fuzzes each as an operation)."""
    sdl = build_schema((Path(__file__).parents[2] / "schema" / "schema.graphql").read_text())
    roots = (sdl.query_type, sdl.mutation_type)
    return sum(len(root.fields) for root in roots if root is not None)


OPERATIONS = _operations()


def test_fuzzing_finds_nothing(server_env: dict[str, str], tmp_path: Path) -> None:
    run(server_env, tmp_path)


def run(env: dict[str, str], tmp_path: Path) -> None:
    migrate_and_seed(env, 50)
    created = run_cli(env, "keys", "create", "--name", "fuzz", "--role", "admin")
    assert created.returncode == 0, created.stderr
    key = re.search(r"tg_[A-Za-z0-9_-]+", created.stdout)
    assert key is not None, created.stdout
    report = tmp_path / "report"
    with serving(env, tmp_path / "server.log") as base:
        done = subprocess.run(
            [
                SCHEMATHESIS,
                "run",
                f"{base}/graphql",
                "--max-examples",
                str(EXAMPLES),
                "--seed",
                str(SEED),
                "--header",
                f"Authorization: Bearer {key.group(0)}",
                "--checks",
                "not_a_server_error,no_unexpected_graphql_error",
                "--workers",
                "1",
                "--report",
                "json",
                "--report-dir",
                str(report),
            ],
            env={**os.environ, "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_checks", "NO_COLOR": "1"},
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            cwd=Path(__file__).parents[2],
        )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    summary = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    assert summary is not None, done.stdout[-2000:]
    generated, passed = int(summary.group(1)), int(summary.group(2))
    assert f"Selected: {OPERATIONS}/{OPERATIONS}" in done.stdout
    assert generated == passed >= OPERATIONS * EXAMPLES * 0.9, done.stdout[-2000:]
    print(f"schemathesis: {generated} generated, {passed} passed, 0 failures")
    reports = list(report.glob("*.json"))
    assert reports
    assert json.loads(reports[0].read_text())
