"""`treegate keys`, `treegate lottery` and `treegate tree`, on an SQLite file.

CliRunner runs each command's own `asyncio.run`, so these tests are plain functions.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from gql.cli import app


@pytest.fixture
def db_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "cli.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TREEGATE_DATABASE_URL", f"sqlite:///{path}")
    assert run("migrate").exit_code == 0
    return path


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def query(path: Path, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql, params).fetchall()


def test_keys_create_shows_the_key_once_and_stores_its_hash(db_file: Path) -> None:
    result = run("keys", "create", "--name", "ops", "--role", "operator")
    assert result.exit_code == 0, result.output
    key = result.output.strip().splitlines()[-1]
    assert key.startswith("tg_")
    assert len(key) > 40
    rows = query(db_file, "SELECT name, role, key_hash, revoked_at FROM treegate_api_key")
    assert rows == [("ops", "OPERATOR", hashlib.sha256(key.encode()).hexdigest(), None)]
    assert key not in str(query(db_file, "SELECT * FROM treegate_api_key"))
    listed = run("keys", "list")
    assert listed.exit_code == 0
    header, row = listed.output.splitlines()
    assert header.split() == ["NAME", "ROLE", "RATE", "PREFIX", "CREATED", "REVOKED"]
    assert row.split()[:3] == ["ops", "operator", "default"]
    assert row.split()[-1] == "-"  # not revoked
    assert key not in listed.output


def test_keys_names_are_unique_unless_replaced(db_file: Path) -> None:
    first = run("keys", "create", "--name", "dev", "--role", "admin").output.splitlines()[-1]
    again = run("keys", "create", "--name", "dev", "--role", "admin")
    assert again.exit_code == 1
    assert "exists" in again.output
    replaced = run("keys", "create", "--name", "dev", "--role", "admin", "--replace")
    assert replaced.exit_code == 0
    second = replaced.output.splitlines()[-1]
    assert second != first
    (stored,) = query(db_file, "SELECT key_hash FROM treegate_api_key WHERE name = 'dev'")
    assert stored == (hashlib.sha256(second.encode()).hexdigest(),)


def test_keys_revoke(db_file: Path) -> None:
    run("keys", "create", "--name", "temp")
    result = run("keys", "revoke", "temp")
    assert result.exit_code == 0, result.output
    (revoked,) = query(db_file, "SELECT revoked_at FROM treegate_api_key WHERE name = 'temp'")
    assert revoked[0] is not None
    (row,) = run("keys", "list").output.splitlines()[1:]
    assert not row.endswith("-")  # the REVOKED column holds the time
    assert run("keys", "revoke", "temp").exit_code == 1
    assert run("keys", "revoke", "nobody").exit_code == 1


def test_keys_rate_limits_are_stored_canonical_and_changed_in_place(db_file: Path) -> None:
    created = run("keys", "create", "--name", "feed", "--rate-limit", " 120 / MIN ")
    assert created.exit_code == 0, created.output
    assert "with role reader and rate limit 120/min" in created.output
    key = created.output.splitlines()[-1]
    stored = "SELECT rate_limit, key_hash FROM treegate_api_key WHERE name = 'feed'"
    assert query(db_file, stored) == [("120/min", hashlib.sha256(key.encode()).hexdigest())]
    assert run("keys", "list").output.splitlines()[1].split()[:3] == ["feed", "reader", "120/min"]
    for given, kept in (("unlimited", "unlimited"), ("5/s", "5/s"), ("default", None)):
        changed = run("keys", "rate-limit", "feed", given)
        assert changed.exit_code == 0, changed.output
        # The key itself is unchanged: only its rate.
        assert query(db_file, stored) == [(kept, hashlib.sha256(key.encode()).hexdigest())]
    assert "of its role" in changed.output
    assert run("keys", "rate-limit", "nobody", "5/s").exit_code == 1


@pytest.mark.parametrize("rate", ["0/s", "5/day", "fast"])
def test_keys_refuse_a_malformed_rate_limit(db_file: Path, rate: str) -> None:
    created = run("keys", "create", "--name", "x", "--rate-limit", rate)
    assert created.exit_code == 2
    assert "is not a rate: write N/s, N/min or N/h" in created.output
    run("keys", "create", "--name", "y")
    changed = run("keys", "rate-limit", "y", rate)
    assert changed.exit_code == 2
    assert query(db_file, "SELECT name, rate_limit FROM treegate_api_key") == [("y", None)]


def test_keys_refuse_an_unknown_role(db_file: Path) -> None:
    result = run("keys", "create", "--name", "x", "--role", "root")
    assert result.exit_code != 0
    assert query(db_file, "SELECT count(*) FROM treegate_api_key") == [(0,)]


def test_lottery_draw_and_tree_commands_log_the_cli_actor(db_file: Path) -> None:
    assert run("seed", "--trees", "300", "--seed", "5").exit_code == 0
    (lang, growing), *_ = query(
        db_file,
        "SELECT lang, sum(state = 'growing') AS g FROM message_tree_state "
        "WHERE state IN ('growing', 'prompt_lottery_waiting') GROUP BY lang "
        "HAVING sum(state = 'prompt_lottery_waiting') >= 2 ORDER BY g LIMIT 1",
    )
    assert growing < 10, "the seed should leave a language below the cap"

    drawn = run("lottery", "draw", "--lang", lang, "--max", "1")
    assert drawn.exit_code == 0, drawn.output
    outcome = json.loads(drawn.output)
    assert outcome["kind"] == "drawn"
    assert len(outcome["drawn"]) == 1
    tree_id = outcome["drawn"][0]["message_tree_id"]
    hex_id = tree_id.replace("-", "")
    assert query(
        db_file, "SELECT state FROM message_tree_state WHERE message_tree_id = ?", hex_id
    ) == [("growing",)]

    assert run("tree", "halt", tree_id, "--reason", "checking").exit_code == 0
    assert run("tree", "resume", tree_id).exit_code == 0
    refused = run("tree", "transition", tree_id, "--to", "ready_for_export")
    assert refused.exit_code == 1
    assert json.loads(refused.output)["reason"] == "NOT_ALLOWED"

    log = query(
        db_file,
        "SELECT from_state, to_state, operation, actor, reason FROM treegate_transition "
        "WHERE message_tree_id = ? ORDER BY sequence",
        hex_id,
    )
    actor = f"cli:{getpass.getuser()}"
    assert log == [
        (
            "prompt_lottery_waiting",
            "growing",
            "drawPromptLottery",
            actor,
            f"drawn in the prompt lottery for {lang}",
        ),
        ("growing", "halted_by_moderator", "haltTree", actor, "checking"),
        ("halted_by_moderator", "growing", "resumeTree", actor, None),
    ]


def test_tree_transition_refuses_an_unknown_state(db_file: Path) -> None:
    result = run("tree", "transition", "00000000-0000-4000-8000-000000000000", "--to", "done")
    assert result.exit_code != 0
    assert "unknown state" in result.output


def test_tree_command_on_a_missing_tree(db_file: Path) -> None:
    result = run("tree", "halt", "00000000-0000-4000-8000-000000000000")
    assert result.exit_code == 1
    assert json.loads(result.output)["kind"] == "not_found"


def test_prune_deletes_expired_idempotency_keys(db_file: Path) -> None:
    rows = [("expired", "2000-01-01 00:00:00.000000"), ("live", "2999-01-01 00:00:00.000000")]
    with closing(sqlite3.connect(db_file)) as conn:
        conn.executemany(
            "INSERT INTO treegate_idempotency "
            "(scope, key, operation, request_hash, created_at, expires_at) "
            "VALUES ('ops', ?, 'haltTree', '', '2000-01-01 00:00:00.000000', ?)",
            rows,
        )
        conn.commit()
    result = run("prune")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "deleted 1 expired idempotency key"
    assert query(db_file, "SELECT key FROM treegate_idempotency") == [("live",)]


def test_tree_bulk_dry_run_then_real_run_then_retry(db_file: Path) -> None:
    assert run("seed", "--trees", "200", "--seed", "5").exit_code == 0
    growing = [
        row[0]
        for row in query(
            db_file,
            "SELECT message_tree_id FROM message_tree_state WHERE state = 'growing' "
            "ORDER BY message_tree_id",
        )
    ]
    assert len(growing) > 3
    args = ("tree", "bulk", "--filter-state", "growing", "--to", "halted_by_moderator")
    limit = ("--limit", str(len(growing) - 1))

    dry = run(*args, *limit, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    planned = json.loads(dry.output)
    assert planned["dry_run"] is True
    assert (planned["matched"], planned["examined"]) == (len(growing), len(growing) - 1)
    assert query(db_file, "SELECT count(*) FROM treegate_transition") == [(0,)]

    done = run(*args, *limit, "--reason", "sweep", "--idempotency-key", "k1", "--json")
    assert done.exit_code == 0, done.output
    report = json.loads(done.output)
    assert [report[k] for k in ("applied", "applied_ids", "has_more")] == [
        planned[k] for k in ("applied", "applied_ids", "has_more")
    ]
    assert [i.replace("-", "") for i in report["applied_ids"]] == growing[:-1]
    log = query(
        db_file, "SELECT operation, actor, reason, bulk_operation_id FROM treegate_transition"
    )
    operation = report["operation_id"].replace("-", "")
    assert set(log) == {("haltTree", f"cli:{getpass.getuser()}", "sweep", operation)}
    assert len(log) == len(growing) - 1

    # The same key again: the recorded report; another input with it: refused, exit 1.
    again = run(*args, *limit, "--reason", "sweep", "--idempotency-key", "k1", "--json")
    assert json.loads(again.output) == report
    reused = run(*args, "--limit", "1", "--idempotency-key", "k1")
    assert reused.exit_code == 1
    assert "IDEMPOTENCY_KEY_REUSED" in reused.output

    # The cursor goes on with the last growing tree.
    rest = run(*args, "--limit", "5", "--after", report["end_cursor"])
    assert rest.exit_code == 0, rest.output
    assert rest.output.splitlines()[1:] == ["matched 1, examined 1", "applied 1"]
    assert query(db_file, "SELECT count(*) FROM message_tree_state WHERE state = 'growing'") == [
        (0,)
    ]


def test_tree_bulk_refuses_a_limit_over_the_cap_and_an_unknown_state(
    db_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREEGATE_MAX_BULK", "10")
    over = run("tree", "bulk", "--to", "ranking", "--limit", "11")
    assert over.exit_code == 2
    assert "between 1 and 10" in over.output
    unknown = run("tree", "bulk", "--to", "ranking", "--filter-state", "done", "--limit", "1")
    assert unknown.exit_code == 2
    assert "unknown state" in unknown.output
