"""The messages API over imported Open-Assistant files: deep trees, deleted and rejected
messages, ties in rank and several languages, on both databases. Every expectation is computed
from the file itself (its nesting), not from Treegate."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.e2e.server import clean_env, run_cli
from tests.graphql import data
from tests.oa_files import Variant, generate_trees, walk

TREE = """query($id: UUID!) {
  messageTreeState(messageTreeId: $id) {
    all: messages(includeDeleted: true) { id depth }
    live: messages { id }
    accepted: messages(includeSpam: false) { id }
  }
}"""


def _key(message: dict[str, Any]) -> tuple[bool, int, datetime, str]:
    rank = message.get("rank")
    created = datetime.fromisoformat(message["created_date"])
    return (rank is None, 0 if rank is None else rank, created, message["message_id"])


def expected(
    message: dict[str, Any], *, deleted: bool, spam: bool, depth: int = 0
) -> Iterator[tuple[str, int]]:
    """Depth-first from the file's nesting, siblings by rank (unranked last), date, id; a
    message left out hides its replies."""
    if message.get("deleted") and not deleted:
        return
    if not spam and message.get("review_result") is not True:
        return
    yield message["message_id"], depth
    for reply in sorted(message.get("replies") or [], key=_key):
        yield from expected(reply, deleted=deleted, spam=spam, depth=depth + 1)


def tie_ranks(trees: list[dict[str, Any]]) -> int:
    """Give the first two ranked siblings of each tree the same rank; how many ties were made."""
    ties = 0
    for tree in trees:
        for message, _depth, _parent in walk(tree):
            ranked = [r for r in message.get("replies") or [] if r.get("rank") is not None]
            if len(ranked) >= 2:
                ranked[1]["rank"] = ranked[0]["rank"]
                ties += 1
                break
    return ties


async def test_imported_trees_read_back_in_the_files_shape(
    database_url: URL, engine: AsyncEngine, client: httpx.AsyncClient, tmp_path: Path
) -> None:
    trees = list(generate_trees(40, seed=16, variant=Variant.OASST2, avg_messages=9.0, max_depth=6))
    assert tie_ranks(trees) >= 5
    deep = max(max(d for _, d, _ in walk(t)) for t in trees)
    assert deep >= 4
    langs = {t["prompt"]["lang"] for t in trees}
    assert len(langs) >= 3
    assert any(m.get("deleted") for t in trees for m, _, _ in walk(t))
    assert any(m.get("review_result") is False for t in trees for m, _, _ in walk(t))

    source = tmp_path / "trees.jsonl"
    source.write_text("".join(json.dumps(t) + "\n" for t in trees))
    env = clean_env() | {
        "TREEGATE_DATABASE_URL": database_url.render_as_string(hide_password=False)
    }
    imported = run_cli(env, "import", str(source), "--quiet")
    assert imported.returncode == 0, imported.stderr

    for tree in trees:
        root = tree["prompt"]
        found = (await data(client, TREE, {"id": tree["message_tree_id"]}))["messageTreeState"]
        assert [(m["id"], m["depth"]) for m in found["all"]] == list(
            expected(root, deleted=True, spam=True)
        )
        assert [m["id"] for m in found["live"]] == [
            i for i, _ in expected(root, deleted=False, spam=True)
        ]
        assert [m["id"] for m in found["accepted"]] == [
            i for i, _ in expected(root, deleted=False, spam=False)
        ]

    # Every language's text is searchable: a word of each language's first root finds it.
    for lang in sorted(langs):
        root = next(t["prompt"] for t in trees if t["prompt"]["lang"] == lang)
        word = max(root["text"].split(), key=len).strip(".,;:!?¿¡\"'()«»“”„")
        result = await data(
            client,
            "query($f: MessageFilter) { messages(filter: $f, first: 100) { nodes { id } } }",
            {"f": {"search": f'"{word}"', "langs": [lang], "includeDeleted": True}},
        )
        assert root["message_id"] in [n["id"] for n in result["messages"]["nodes"]], (lang, word)
