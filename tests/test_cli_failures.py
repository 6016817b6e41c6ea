"""The operational failures a user meets at the command line: one clear line each, an exit code of
its own, no traceback (unless asked for). Each case runs the real `treegate` executable."""

from __future__ import annotations

import asyncio
import gzip
import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import pytest
from typer.testing import CliRunner

from db.engine import create_engine
from db.migrate import VERSION_TABLE, upgrade
from gql.cli import app as cli_app
from tests.e2e.server import TREEGATE, clean_env, run_cli
from tests.oa_files import Variant, generate_trees, write_file

UNREACHABLE = "postgresql://postgres:secret@127.0.0.1:1/treegate"
TREE = "6c0ba4a9-1d4c-4b0a-9d1e-0d3b1d6d8b1a"


@pytest.fixture
def trees_file(tmp_path: Path) -> Path:
    path = tmp_path / "few.trees.jsonl.gz"
    write_file(path, generate_trees(3, seed=5, variant=Variant.OASST2))
    return path


COMMANDS: dict[str, tuple[str, ...]] = {
    "import": ("import", "{trees}", "--quiet"),
    "export": ("export", "{tmp}/out.jsonl"),
    "seed": ("seed", "--trees", "5"),
    "prune": ("prune",),
    "keys create": ("keys", "create", "--name", "ops"),
    "keys list": ("keys", "list"),
    "keys revoke": ("keys", "revoke", "ops"),
    "lottery draw": ("lottery", "draw", "--lang", "en"),
    "tree halt": ("tree", "halt", TREE, "--reason", "spam"),
    "tree resume": ("tree", "resume", TREE),
    "tree transition": ("tree", "transition", TREE, "--to", "ranking"),
    "persisted add": ("persisted", "add", "{tmp}/counts.graphql"),
    "persisted list": ("persisted", "list"),
}
"""Every command that reads or writes the database, with valid arguments."""


def command(name: str, trees_file: Path, tmp_path: Path) -> list[str]:
    (tmp_path / "counts.graphql").write_text("query Counts { treeStateCounts { state count } }")
    return [arg.format(trees=trees_file, tmp=tmp_path) for arg in COMMANDS[name]]


def env_with(url: str, **more: str) -> dict[str, str]:
    return clean_env() | {"TREEGATE_DATABASE_URL": url} | more


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "Traceback" not in stderr
    return lines[0]


@pytest.mark.parametrize("name", [*COMMANDS, "migrate"])
def test_an_unreachable_database_is_one_line_and_exit_69(
    name: str, trees_file: Path, tmp_path: Path
) -> None:
    args = ["migrate"] if name == "migrate" else command(name, trees_file, tmp_path)
    result = run_cli(env_with(UNREACHABLE), *args)
    assert result.returncode == 69, result.stderr
    line = one_line(result.stderr)
    assert line.startswith("treegate: cannot reach the database at postgresql://postgres:***@")
    assert "is it running" in line
    assert "secret" not in result.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_a_database_never_migrated_is_one_line_and_exit_78(
    name: str, trees_file: Path, tmp_path: Path
) -> None:
    database = tmp_path / "empty.db"
    result = run_cli(env_with(f"sqlite:///{database}"), *command(name, trees_file, tmp_path))
    assert result.returncode == 78, result.stderr
    assert one_line(result.stderr) == (
        f"treegate: the database at sqlite:///{database} has no Treegate tables yet: "
        "run `treegate migrate`"
    )


def migrated(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'treegate.db'}"
    assert run_cli(env_with(url), "migrate").returncode == 0
    return url


def set_revision(url: str, revision: str) -> None:
    with closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = ?", (revision,))
        conn.commit()


async def migrated_to(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, revision)
    finally:
        await engine.dispose()


def test_an_older_schema_says_which_revision_is_needed(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'treegate.db'}"
    asyncio.run(migrated_to(url, "0002"))
    result = run_cli(env_with(url), "keys", "list")
    assert result.returncode == 78
    line = one_line(result.stderr)
    assert "is at schema revision 0002 and this Treegate needs" in line
    assert line.endswith("run `treegate migrate`")
    # Which `treegate migrate` then brings up to date.
    assert run_cli(env_with(url), "migrate").returncode == 0
    assert run_cli(env_with(url), "keys", "list").returncode == 0


def test_a_schema_from_a_newer_treegate_is_refused(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    set_revision(url, "9999_from_the_future")
    result = run_cli(env_with(url), "keys", "list")
    assert result.returncode == 78
    assert "which this Treegate does not know" in one_line(result.stderr)


def test_serve_refuses_a_database_never_migrated(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    result = run_cli(env_with(f"sqlite:///{database}", TREEGATE_PORT="1"), "serve")
    assert result.returncode == 78
    assert "has no Treegate tables yet: run `treegate migrate`" in one_line(result.stderr)


def test_a_sqlite_file_in_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'treegate.db'}"
    result = run_cli(env_with(url), "migrate")
    assert result.returncode == 69
    assert "its directory must exist and be writable" in one_line(result.stderr)


def test_a_missing_file_is_exit_66(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    missing = tmp_path / "nowhere.jsonl"
    for args in (("import", str(missing)), ("persisted", "add", str(missing))):
        result = run_cli(env_with(url), *args)
        assert result.returncode == 66, result.stderr
        assert one_line(result.stderr) == f"treegate: {missing}: no such file or directory"


# Root reads any file: without these capabilities it is refused as anyone else would be.
WITHOUT_OVERRIDE = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def test_a_file_without_permission_is_exit_77(tmp_path: Path, trees_file: Path) -> None:
    url = migrated(tmp_path)
    secret = tmp_path / "secret.trees.jsonl.gz"
    secret.write_bytes(trees_file.read_bytes())
    secret.chmod(0o000)
    prefix = WITHOUT_OVERRIDE if os.geteuid() == 0 else ()
    result = subprocess.run(
        [*prefix, TREEGATE, "import", str(secret)],
        env=env_with(url),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 77, result.stderr
    assert one_line(result.stderr) == f"treegate: {secret}: permission denied"


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    database = tmp_path / "empty.db"
    for args, env in [
        (("--debug", "keys", "list"), {}),
        (("keys", "list"), {"TREEGATE_LOG_LEVEL": "debug"}),
    ]:
        result = run_cli(env_with(f"sqlite:///{database}", **env), *args)
        assert result.returncode != 0
        assert "Traceback" in result.stderr
        assert "OperationalFailure" in result.stderr


def test_an_invalid_setting_is_one_line(tmp_path: Path) -> None:
    result = run_cli(env_with(migrated(tmp_path), TREEGATE_DB_POOL_SIZE="many"), "keys", "list")
    assert result.returncode == 78
    assert one_line(result.stderr).startswith("treegate: invalid setting: TREEGATE_DB_POOL_SIZE:")


@pytest.mark.parametrize(
    ("env", "words"),
    [
        (
            {"TREEGATE_CORS_ORIGINS": "*", "TREEGATE_CORS_ALLOW_CREDENTIALS": "true"},
            "treegate: invalid setting: Value error, TREEGATE_CORS_ORIGINS=* cannot go with "
            "TREEGATE_CORS_ALLOW_CREDENTIALS=true",
        ),
        (
            {"TREEGATE_CORS_ORIGINS": "http://localhost:3000/app"},
            "treegate: invalid setting: TREEGATE_CORS_ORIGINS: Value error, "
            "'http://localhost:3000/app' is not an origin",
        ),
        (
            {"TREEGATE_RATE_LIMITS": "reader=100/day"},
            "treegate: invalid setting: TREEGATE_RATE_LIMITS: Value error, '100/day' is not a "
            "rate: write N/s, N/min or N/h",
        ),
        (
            {"TREEGATE_RATE_LIMITS": "guest=1/s"},
            "treegate: invalid setting: TREEGATE_RATE_LIMITS: Value error, 'guest=1/s': write "
            "who=rate, who being one of anonymous, reader, operator, moderator, admin",
        ),
    ],
)
def test_serve_refuses_a_wrong_cors_or_rate_limit_setting_in_one_line(
    tmp_path: Path, env: dict[str, str], words: str
) -> None:
    result = run_cli(env_with(migrated(tmp_path), **env), "serve")
    assert result.returncode == 78
    assert one_line(result.stderr).startswith(words)


def test_a_file_that_is_not_gzip_is_one_line(tmp_path: Path) -> None:
    url = migrated(tmp_path)
    broken = tmp_path / "broken.trees.jsonl.gz"
    broken.write_bytes(gzip.compress(b"{}")[:10])
    result = run_cli(env_with(url), "import", str(broken), "--quiet")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("url", "args", "code", "words"),
    [
        (UNREACHABLE, ["keys", "list"], 69, "cannot reach the database"),
        ("sqlite:///{tmp}/empty.db", ["keys", "list"], 78, "has no Treegate tables yet"),
        ("sqlite:///{tmp}/empty.db", ["import", "{tmp}/nowhere.jsonl"], 66, "no such file"),
    ],
)
def test_the_same_in_process(
    url: str,
    args: list[str],
    code: int,
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The command group's handling, run in the test process (as CliRunner runs commands)."""
    monkeypatch.setenv("TREEGATE_DATABASE_URL", url.format(tmp=tmp_path))
    result = CliRunner().invoke(cli_app, [arg.format(tmp=tmp_path) for arg in args])
    assert result.exit_code == code, result.output
    assert words in result.output
    assert "Traceback" not in result.output
