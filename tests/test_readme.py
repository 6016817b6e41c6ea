"""The README tells the truth: its example queries answer what it shows, its tables are current."""

from __future__ import annotations

import difflib
import json
import os
import re
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer.main

from db import keys
from db.seed import seed
from domain.transitions import Role
from gql.app import create_app
from gql.cli import app as cli_app
from gql.cli_writes import new_key
from gql.docs import state_machine_markdown
from gql.settings import Settings
from tests.databases import migrated_engine, sqlite_url
from tests.e2e.server import TREEGATE, clean_env, migrate_and_seed, run_cli, server_process

ROOT = Path(__file__).parent.parent
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"```(\w+)\n(.*?)```", re.DOTALL)
NOT_RUN = re.compile(r"<!-- readme-test: not run \((.+)\) -->\n*$")


def examples() -> list[tuple[str, Any]]:
    """Each ```graphql block, with the ```json block that follows it (if one does)."""
    blocks = [(m.group(1), m.group(2)) for m in BLOCK.finditer(README)]
    found: list[tuple[str, Any]] = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "graphql":
            continue
        following = blocks[i + 1] if i + 1 < len(blocks) else None
        expected = json.loads(following[1]) if following and following[0] == "json" else None
        found.append((body, expected))
    return found


EXAMPLES = examples()


WILDCARD = "…"


def matches(actual: Any, expected: Any) -> bool:
    """Equality, where the README's "…" stands for any value."""
    if expected == WILDCARD:
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and actual.keys() == expected.keys()
            and all(matches(actual[k], v) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(matches(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return bool(actual == expected)


@pytest.fixture(scope="module")
async def demo_client(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[httpx.AsyncClient]:
    """The data `make run` serves: 2,000 trees with seed 0, on SQLite, and its dev-admin key."""
    url = sqlite_url(tmp_path_factory.mktemp("readme") / "demo.db")
    key = new_key()
    async with migrated_engine(url) as engine:
        await seed(engine, 2000, 0)
        async with engine.begin() as conn:
            await keys.insert(conn, "dev-admin", Role.ADMIN, key, datetime.now(UTC))
    app = create_app(Settings(database_url=url.render_as_string()))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://readme", headers=headers
        ) as client:
            yield client


def test_readme_has_examples_with_answers() -> None:
    assert len(EXAMPLES) >= 5
    assert sum(expected is not None for _, expected in EXAMPLES) >= 4


@pytest.mark.parametrize(("query", "expected"), EXAMPLES, ids=lambda v: str(v)[:30])
async def test_readme_example(demo_client: httpx.AsyncClient, query: str, expected: Any) -> None:
    response = await demo_client.post("/graphql", json={"query": query})
    assert response.status_code == 200
    body = response.json()
    assert "errors" not in body, body
    if expected is not None:
        assert matches(body, expected), json.dumps(body, indent=1, ensure_ascii=False)
    if "idempotencyKey" in query:
        again = await demo_client.post("/graphql", json={"query": query})
        assert again.json() == body, "an idempotent retry must return the first result"


async def test_readme_next_page_cursor_works(demo_client: httpx.AsyncClient) -> None:
    query, expected = next((q, e) for q, e in EXAMPLES if "WaitingGermanPrompts" in q)
    cursor = expected["data"]["messageTreeStates"]["pageInfo"]["endCursor"]
    assert cursor in README.split("For the next page", 1)[1]
    response = await demo_client.post(
        "/graphql", json={"query": query, "variables": {"after": cursor}}
    )
    page = response.json()["data"]["messageTreeStates"]
    first_ids = {n["messageTreeId"] for n in expected["data"]["messageTreeStates"]["nodes"]}
    assert len(page["nodes"]) == 2
    assert first_ids.isdisjoint(n["messageTreeId"] for n in page["nodes"])


def test_readme_state_machine_tables_are_generated() -> None:
    section = README.split("<!-- state-table:start -->\n", 1)[1].split("<!-- state-table:end -->")[
        0
    ]
    assert section == state_machine_markdown()


def test_readme_lists_every_setting_with_its_default() -> None:
    for name, field in Settings.model_fields.items():
        row = next(
            (
                line
                for line in README.splitlines()
                if line.startswith(f"| `TREEGATE_{name.upper()}`")
            ),
            None,
        )
        assert row is not None, f"TREEGATE_{name.upper()} is missing from the README"
        if field.default is not None and name != "graphiql":
            assert str(field.default).lower() in row.lower(), (
                f"README default for {name} is not {field.default}"
            )


def test_readme_lists_every_command() -> None:
    command = typer.main.get_command(cli_app)
    names = getattr(command, "commands", {})
    assert names
    for name in names:
        assert f"`treegate {name}" in README, f"`treegate {name}` is missing from the README"


# -- the shell examples, run for real ------------------------------------------------------


@dataclass(frozen=True)
class ShellExample:
    line: int
    script: str
    expected: str | None
    """The ```text block that follows, if any: the script's output, "…" standing for anything."""
    not_run: str | None
    """Why the test does not run it (said in the README, just above the block)."""


def shell_examples() -> list[ShellExample]:
    matches_ = list(BLOCK.finditer(README))
    found = []
    for i, match in enumerate(matches_):
        if match.group(1) != "sh":
            continue
        following = matches_[i + 1] if i + 1 < len(matches_) else None
        between = README[match.end() : following.start()] if following else ""
        expected = (
            following.group(2)
            if following and following.group(1) == "text" and not between.strip()
            else None
        )
        reason = NOT_RUN.search(README[: match.start()])
        found.append(
            ShellExample(
                README[: match.start()].count("\n") + 1,
                match.group(2),
                expected,
                reason.group(1) if reason else None,
            )
        )
    return found


SHELL = shell_examples()


def output_matches(actual: str, expected: str) -> bool:
    """Line by line; "…" in an expected line stands for any text."""
    actual_lines = [line.rstrip() for line in actual.strip("\n").splitlines()]
    expected_lines = [line.rstrip() for line in expected.strip("\n").splitlines()]
    patterns = [
        re.compile(".*".join(re.escape(part) for part in line.split(WILDCARD)))
        for line in expected_lines
    ]
    return len(actual_lines) == len(patterns) and all(
        p.fullmatch(line) for p, line in zip(patterns, actual_lines, strict=True)
    )


def test_only_make_and_docker_examples_are_not_run() -> None:
    assert len(SHELL) >= 6
    for example in SHELL:
        if example.not_run is None:
            continue
        first = example.script.split()[0]
        assert first in ("make", "docker"), f"README line {example.line} is not run"
        assert len(example.not_run) > 20, "say why"


@dataclass
class Walkthrough:
    env: dict[str, str]
    base: str
    workdir: Path


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    """`make run`'s demo, served by a real `treegate serve`, and the admin key it printed."""
    workdir = tmp_path_factory.mktemp("walkthrough")
    env = clean_env() | {
        "TREEGATE_DATABASE_URL": f"sqlite:///{workdir / 'treegate.db'}",
        "PATH": f"{Path(TREEGATE).parent}:{os.environ['PATH']}",
    }
    migrate_and_seed(env, 2000)
    created = run_cli(env, "keys", "create", "--name", "dev-admin", "--role", "admin")
    assert created.returncode == 0, created.stderr
    env["KEY"] = created.stdout.strip().splitlines()[-1]
    with server_process(env, workdir / "server.log") as server:
        yield Walkthrough(env, server.base, workdir)


RUN = [e for e in SHELL if e.not_run is None]


@pytest.mark.parametrize("example", RUN, ids=[f"line {e.line}" for e in RUN])
def test_readme_shell_example(walkthrough: Walkthrough, example: ShellExample) -> None:
    script = example.script.replace("http://127.0.0.1:8000", walkthrough.base)
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=walkthrough.workdir,
        env=walkthrough.env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"README line {example.line}:\n{done.stdout}\n{done.stderr}"
    if example.expected is not None:
        assert output_matches(done.stdout, example.expected), "\n".join(
            difflib.unified_diff(
                example.expected.splitlines(), done.stdout.splitlines(), "README", "printed"
            )
        )


def command_paths(command: Any, prefix: str = "treegate") -> list[str]:
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        return [prefix]
    return [
        path for name, sub in subcommands.items() for path in command_paths(sub, f"{prefix} {name}")
    ]


def test_every_command_runs_in_a_readme_example() -> None:
    run = "\n".join(example.script for example in RUN)
    paths = command_paths(typer.main.get_command(cli_app))
    assert len(paths) > 15
    missing = [
        path for path in paths if not re.search(rf"(^|\s|\(){re.escape(path)}(\s|$)", run, re.M)
    ]
    assert not missing, f"no README example runs {missing}"
