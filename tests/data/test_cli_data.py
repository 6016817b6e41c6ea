"""`treegate import` and `treegate export` as a user runs them: messages, exit codes, the progress
bar in a terminal, gzip and standard output."""

from __future__ import annotations

import gzip
import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import user
from tests.e2e.server import TREEGATE, clean_env, run_cli
from tests.oa_files import Variant, generate_trees, write_file


def env_for(database_url: URL) -> dict[str, str]:
    return clean_env() | {
        "TREEGATE_DATABASE_URL": database_url.render_as_string(hide_password=False)
    }


async def test_import_then_export_at_the_command_line(
    database_url: URL, engine: AsyncEngine, tmp_path: Path
) -> None:
    env = env_for(database_url)
    source = tmp_path / "oasst.trees.jsonl.gz"
    written = write_file(source, generate_trees(120, seed=21, variant=Variant.OASST2))

    first = run_cli(env, "import", str(source), "--origin", "cli-test")
    assert first.returncode == 0, first.stderr
    assert f"imported 120 trees ({written.messages:,} messages" in first.stdout
    async with engine.connect() as conn:
        users = (await conn.execute(sa.select(sa.func.count()).select_from(user))).scalar_one()
    assert f"{users:,} new users)" in first.stdout  # the users the table holds, each once
    again = run_cli(env, "import", str(source))
    assert again.returncode == 0, again.stderr
    assert "imported 0 trees (0 messages, 0 new users)" in again.stdout
    assert "skipped 120 trees already present" in again.stdout

    out = tmp_path / "ready.jsonl.gz"
    exported = run_cli(env, "export", str(out), "--state", "READY_FOR_EXPORT")
    assert exported.returncode == 0, exported.stderr
    with gzip.open(out, "rt") as f:
        trees = [json.loads(line) for line in f]
    assert trees
    assert {t["tree_state"] for t in trees} == {"ready_for_export"}
    assert {t["origin"] for t in trees} == {"cli-test"}
    assert f"exported {len(trees)} trees to {out}" in exported.stdout
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".partial")]

    to_stdout = run_cli(env, "export", "-", "--lang", "en")
    assert to_stdout.returncode == 0, to_stdout.stderr
    english = [json.loads(line) for line in to_stdout.stdout.splitlines()]
    assert english
    assert {t["prompt"]["lang"] for t in english} == {"en"}

    unknown = run_cli(env, "export", "-", "--state", "finished")
    assert unknown.returncode == 2
    assert "'finished' is not a state" in unknown.stderr


async def test_an_invalid_line_exits_1_naming_the_file_and_line(
    database_url: URL, engine: AsyncEngine, tmp_path: Path
) -> None:
    env = env_for(database_url)
    path = tmp_path / "broken.jsonl"
    good = [json.dumps(t) for t in generate_trees(4, seed=2, variant=Variant.BACKEND)]
    path.write_text("\n".join([*good[:2], "{oops", *good[2:]]) + "\n")

    stopped = run_cli(env, "import", str(path))
    assert stopped.returncode == 1
    assert f"{path}:3: not valid JSON" in " ".join(stopped.stderr.split())
    assert "nothing of its own batch was" in " ".join(stopped.stderr.split())

    skipping = run_cli(env, "import", str(path), "--skip-invalid")
    assert skipping.returncode == 0, skipping.stderr
    assert f"{path}:3: not valid JSON" in " ".join(skipping.stderr.split())
    assert "imported 4 trees" in skipping.stdout
    assert skipping.stdout.rstrip().endswith("; 1 invalid line")


def test_the_progress_bar_shows_trees_per_second_in_a_terminal(tmp_path: Path) -> None:
    env = clean_env() | {
        "TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'bar.db'}",
        "COLUMNS": "120",
        "TERM": "xterm",
    }
    assert run_cli(env, "migrate").returncode == 0
    source = tmp_path / "trees.jsonl"
    write_file(source, generate_trees(3000, seed=1, variant=Variant.BACKEND))
    controller, terminal = pty.openpty()
    process = subprocess.Popen(
        [TREEGATE, "import", str(source), "--batch-size", "100"],
        env=env,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    output = b""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        ready, _, _ = select.select([controller], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            output += chunk
        elif process.poll() is not None:
            break
    os.close(controller)
    assert process.wait(timeout=30) == 0
    shown = output.decode(errors="replace")
    assert "importing" in shown
    assert "trees/s" in shown
    assert "imported 3,000 trees" in shown
