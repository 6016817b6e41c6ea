"""The data `make run` serves keeps every rule Treegate enforces: checked on the database itself,
after the very commands the Makefile's `run` target runs."""

from __future__ import annotations

import json
import shlex
import sqlite3
import subprocess
from collections import Counter
from contextlib import closing
from pathlib import Path

from domain.lottery import MAX_ACTIVE_TREES
from domain.states import State, is_active
from tests.e2e.server import clean_env, run_cli

ROOT = Path(__file__).resolve().parents[2]
GREW = {State.GROWING, State.RANKING, State.READY_FOR_SCORING, State.READY_FOR_EXPORT}
"""States a tree reaches only through the prompt lottery (unless it came from a backlog)."""
NEVER_DRAWN = {State.INITIAL_PROMPT_REVIEW, State.PROMPT_LOTTERY_WAITING}


def make_run_commands() -> list[list[str]]:
    """The `treegate` commands `make run` runs to prepare the data, as make expands them."""
    planned = subprocess.run(
        ["make", "--no-print-directory", "-n", "run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    commands = []
    for line in planned.splitlines():
        words = shlex.split(line)
        if words and words[0].endswith("/treegate") and words[1] in ("migrate", "seed"):
            commands.append(words[1:])
    return commands


def test_the_demo_data_keeps_every_invariant(tmp_path: Path) -> None:
    database = tmp_path / "treegate.db"
    env = clean_env() | {"TREEGATE_DATABASE_URL": f"sqlite:///{database}"}
    commands = make_run_commands()
    assert [c[0] for c in commands] == ["migrate", "seed"]
    for command in commands:
        done = run_cli(env, *command)
        assert done.returncode == 0, done.stderr

    with closing(sqlite3.connect(database)) as conn:
        trees = conn.execute(
            "SELECT state, active, lang, won_prompt_lottery_date, origin FROM message_tree_state"
        ).fetchall()
    assert len(trees) == 2000
    growing = Counter(lang for state, _, lang, _, _ in trees if state == State.GROWING.value)
    # The lottery's cap per language, with room left for a draw.
    assert growing, "the demo has growing trees"
    assert max(growing.values()) < MAX_ACTIVE_TREES
    for state_name, active, _lang, won, origin in trees:
        state = State(state_name)
        assert bool(active) == is_active(state), state
        if state in GREW and origin != "backlog-import":
            assert won is not None, state
        if state in NEVER_DRAWN:
            assert won is None, state

    # So the lottery draws at once, in the language with the most growing trees.
    lang, _ = growing.most_common(1)[0]
    drawn = run_cli(env, "lottery", "draw", "--lang", lang)
    assert drawn.returncode == 0, drawn.stdout + drawn.stderr
    outcome = json.loads(drawn.stdout)
    assert (outcome["kind"], outcome["message"]) == ("drawn", "drew 1 of 1 asked")
    assert outcome["growing_after"] == growing[lang] + 1


def test_make_reset_demo_deletes_the_demo_database_and_nothing_else(tmp_path: Path) -> None:
    files = [tmp_path / name for name in ("treegate.db", "treegate.db-wal", "treegate.db-shm")]
    kept = tmp_path / "other.db"
    for path in [*files, kept]:
        path.write_bytes(b"x")
    make = ["make", "--no-print-directory", "-f", str(ROOT / "Makefile"), "reset-demo"]
    env = clean_env()
    # A configured database is never the demo's: refused, nothing deleted.
    refused = subprocess.run(
        make,
        cwd=tmp_path,
        env=env | {"TREEGATE_DATABASE_URL": "sqlite:///treegate.db"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode != 0
    assert "TREEGATE_DATABASE_URL is set" in refused.stdout
    assert all(path.exists() for path in files)
    done = subprocess.run(make, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert not any(path.exists() for path in files)
    assert kept.exists()
    assert "the next make run seeds the demo data again" in done.stdout
