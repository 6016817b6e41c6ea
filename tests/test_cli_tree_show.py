"""`treegate tree show`: a tree's state and its messages, indented, as text or JSON, on both
databases."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy.engine import URL
from typer.testing import CliRunner, Result

from db.engine import create_engine
from gql.cli import app
from tests.databases import truncate_all
from tests.message_trees import KNOWN, Tree, insert_known


def run(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture
def known(database_url: URL, monkeypatch: pytest.MonkeyPatch) -> Tree:
    url = database_url.render_as_string(hide_password=False)
    monkeypatch.setenv("TREEGATE_DATABASE_URL", url)

    async def fill() -> Tree:
        engine = create_engine(url)
        try:
            await truncate_all(engine)
            english, _ = await insert_known(engine)
            return english
        finally:
            await engine.dispose()

    return asyncio.run(fill())


def test_show_prints_the_state_and_the_messages_indented(known: Tree) -> None:
    result = run("tree", "show", str(known.id))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == f"tree {known.id}"
    assert lines[1] == "state: growing (not terminal; active: true)"
    assert lines[2] == "lang: en  origin: -  messages: 9"
    assert lines[3].startswith("allowed transitions: ")
    assert "halted_by_moderator" in lines[3]
    body = lines[4:]
    text = {r.name: r.text for r in KNOWN}
    assert body[0] == f"- [prompter, accepted] {text['root']}  ({known['root']})"
    assert body[1] == f"  - [assistant, rank 0, accepted] {text['a_best']}  ({known['a_best']})"
    assert body[2] == f"    - [prompter, rejected] {text['p_spam']}  ({known['p_spam']})"
    assert body[3].startswith("      - [assistant, accepted] I cannot help")
    assert [line.split("(")[-1].rstrip(")") for line in body] == [
        known[n]
        for n in ("root", "a_best", "p_spam", "a_under_spam", "a_second", "p_follow",
                  "a_deep", "a_tie_early", "a_tie_late")
    ]  # fmt: skip
    with_deleted = run("tree", "show", str(known.id), "--deleted").output
    assert f"[assistant, accepted, deleted] {text['a_deleted']}" in with_deleted


def test_show_json_holds_every_field(known: Tree) -> None:
    result = run("tree", "show", str(known.id), "--json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["tree"]["message_tree_id"] == str(known.id)
    assert document["tree"]["state"] == "growing"
    first = document["messages"][0]
    assert first["id"] == first["message_tree_id"] == known["root"]
    assert first["parent_id"] is None
    assert first["text"] == KNOWN[0].text
    assert first["created_date"].startswith("2023-05-02T09:00:00")
    assert [m["id"] for m in document["messages"]][:3] == [
        known["root"], known["a_best"], known["p_spam"]
    ]  # fmt: skip


def test_show_an_unknown_tree_fails(known: Tree) -> None:
    result = run("tree", "show", "00000000-0000-4000-8000-000000000000")
    assert result.exit_code == 1
    assert "no tree with id" in result.output
    assert run("tree", "show", "not-a-uuid").exit_code == 2
