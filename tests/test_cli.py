"""The `treegate` CLI: migrate and seed, on an SQLite file named by TREEGATE_DATABASE_URL.

CliRunner runs each command's own `asyncio.run`, so these tests are plain functions.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from typer.main import get_command
from typer.testing import CliRunner, Result

from db.migrate import VERSION_TABLE, head_revision
from gql.cli import app


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("TREEGATE_DATABASE_URL", f"sqlite:///{path}")
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def count(path: Path, table: str) -> int:
    with closing(sqlite3.connect(path)) as conn:
        (n,) = conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()
    return int(n)


def tables(path: Path) -> set[str]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def test_migrate(db_file: Path) -> None:
    result = run("migrate")
    assert result.exit_code == 0, result.output
    assert "migrated sqlite:///" in result.output
    assert {"user", "user_stats", "message", "message_tree_state", VERSION_TABLE} <= tables(db_file)
    with closing(sqlite3.connect(db_file)) as conn:
        versions = conn.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall()
    assert versions == [(head_revision(),)]
    again = run("migrate")
    assert again.exit_code == 0, again.output
    assert count(db_file, VERSION_TABLE) == 1


def test_seed_writes_the_requested_trees(db_file: Path) -> None:
    assert run("migrate").exit_code == 0
    result = run("seed", "--trees", "30", "--seed", "3")
    assert result.exit_code == 0, result.output
    assert "seeded 30 trees" in result.output
    assert "(seed 3)" in result.output
    assert count(db_file, "message_tree_state") == 30
    messages = count(db_file, "message")
    users = count(db_file, "user")
    assert messages >= 30
    assert users >= 1
    assert f"{messages} messages" in result.output
    assert f"{users} users" in result.output


def test_second_seed_fails_and_adds_nothing(db_file: Path) -> None:
    assert run("migrate").exit_code == 0
    assert run("seed", "--trees", "30", "--seed", "3").exit_code == 0
    messages = count(db_file, "message")

    again = run("seed", "--trees", "30", "--seed", "4")
    assert again.exit_code == 1
    assert "already holds 30 trees" in again.output
    assert "--if-empty" in again.output
    assert count(db_file, "message_tree_state") == 30
    assert count(db_file, "message") == messages


def test_seed_if_empty_on_a_seeded_database_does_nothing(db_file: Path) -> None:
    assert run("migrate").exit_code == 0
    assert run("seed", "--trees", "30", "--seed", "3").exit_code == 0
    messages = count(db_file, "message")

    result = run("seed", "--if-empty", "--trees", "10")
    assert result.exit_code == 0, result.output
    assert "already holds 30 trees: not seeding" in result.output
    assert count(db_file, "message_tree_state") == 30
    assert count(db_file, "message") == messages


def test_seed_if_empty_on_an_empty_database_seeds(db_file: Path) -> None:
    assert run("migrate").exit_code == 0
    result = run("seed", "--if-empty", "--trees", "7")
    assert result.exit_code == 0, result.output
    assert count(db_file, "message_tree_state") == 7


def test_seed_refuses_zero_trees(db_file: Path) -> None:
    assert run("migrate").exit_code == 0
    result = run("seed", "--trees", "0")
    assert result.exit_code == 2
    assert count(db_file, "message_tree_state") == 0


def _paths(command: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    subcommands = getattr(command, "commands", None) or {}
    return [prefix] + [p for name, sub in subcommands.items() for p in _paths(sub, (*prefix, name))]


@pytest.mark.parametrize("path", _paths(get_command(app)), ids=lambda p: " ".join(p) or "treegate")
def test_help_reads_as_a_user_expects(path: tuple[str, ...]) -> None:
    """Options name their values (no `<bool>` on a flag, no `<str>`), and the list of commands
    shows each one's first sentence whole, not cut mid-sentence."""
    result = CliRunner().invoke(app, [*path, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    options = [line for line in result.output.splitlines() if line.lstrip().startswith("--")]
    assert options
    for line in options:
        assert "<bool>" not in line
        assert "<str>" not in line
    commands = result.output.split("Commands:\n", 1)[1] if "Commands:" in result.output else ""
    for line in commands.splitlines():
        assert not line.rstrip().endswith("..."), line
