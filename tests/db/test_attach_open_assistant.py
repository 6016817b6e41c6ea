"""Attach mode: Treegate pointed at an existing Open-Assistant database.

The database is built from DDL that mirrors what Open-Assistant's migrations leave
(`tests/fixtures/open_assistant_schema.sql`: its API clients, users with their extra columns,
messages with `api_client_id`, `frontend_message_id` and the search vector, foreign keys and
indexes; an SQLite rendering of the core tables beside it), filled with rows the way
Open-Assistant writes them. Then, through the real `treegate` command and the real app:
`treegate migrate` creates only `treegate_` tables; reads, transitionTree, haltTree, resumeTree
and the lottery work; `treegate export` writes the trees; `treegate import` refuses the database
before writing anything; and Open-Assistant's tables keep their exact definitions throughout
(`pg_dump --schema-only` on PostgreSQL, `sqlite_master` on SQLite).
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from db.engine import create_engine
from gql.settings import Settings
from tests.databases import PostgresUnavailable, postgres_database
from tests.e2e.server import clean_env, run_cli
from tests.faults.cluster import find_bin_dir
from tests.graphql import app_client, data

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
OA_TABLES = ("api_client", "user", "message", "message_tree_state", "user_stats")
"""The tables every Open-Assistant database has that Treegate reads (the PostgreSQL DDL holds
more: task, text_labels, message_emoji, journal, ...; all are compared)."""
WHEN = datetime(2023, 5, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class OpenAssistantDatabase:
    backend: str
    url: str
    engine: AsyncEngine

    def uid(self, value: uuid.UUID) -> str:
        """An id as the database stores it (SQLite: SQLAlchemy's 32 hex digits)."""
        return str(value) if self.backend == "postgresql" else value.hex

    def when(self, value: datetime) -> Any:
        return value if self.backend == "postgresql" else value.strftime("%Y-%m-%d %H:%M:%S")


@asynccontextmanager
async def open_assistant_database(
    backend: str, tmp_path: Path
) -> AsyncIterator[OpenAssistantDatabase]:
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'open-assistant.db'}"
        engine = create_engine(url)
        script = (FIXTURES / "open_assistant_schema.sqlite.sql").read_text()
        async with engine.begin() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.executescript(script)  # type: ignore[union-attr]
        try:
            yield OpenAssistantDatabase(backend, url, engine)
        finally:
            await engine.dispose()
        return
    try:
        async with postgres_database("treegate_attach") as sa_url:
            url = sa_url.set(drivername="postgresql").render_as_string(hide_password=False)
            connection = await asyncpg.connect(url)
            try:
                await connection.execute((FIXTURES / "open_assistant_schema.sql").read_text())
            finally:
                await connection.close()
            engine = create_engine(url)
            try:
                yield OpenAssistantDatabase(backend, url, engine)
            finally:
                await engine.dispose()
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)


@dataclass(frozen=True)
class Trees:
    growing: uuid.UUID
    waiting: tuple[uuid.UUID, uuid.UUID]
    halted: uuid.UUID
    exported: uuid.UUID


async def fill(db: OpenAssistantDatabase) -> Trees:
    """Rows as Open-Assistant writes them: an API client, users with stats, five trees."""
    client = uuid.uuid4()
    users = [uuid.uuid4() for _ in range(3)]
    trees = Trees(uuid.uuid4(), (uuid.uuid4(), uuid.uuid4()), uuid.uuid4(), uuid.uuid4())
    u = db.uid
    statements: list[tuple[str, dict[str, Any]]] = [
        (
            "INSERT INTO api_client (id, api_key, description, enabled) "
            "VALUES (:id, 'key-1', 'website', true)",
            {"id": u(client)},
        )
    ]
    for n, user in enumerate(users):
        statements.append(
            (
                'INSERT INTO "user" (id, username, auth_method, display_name, api_client_id) '
                "VALUES (:id, :name, 'discord', :name, :client)",
                {"id": u(user), "name": f"oa-user-{n}", "client": u(client)},
            )
        )
        counters = ", ".join(["0"] * 14)
        statements.append(
            (
                "INSERT INTO user_stats (user_id, time_frame, leader_score, prompts, "
                "replies_assistant, replies_prompter, labels_simple, labels_full, rankings_total, "
                "rankings_good, accepted_prompts, accepted_replies_assistant, "
                f"accepted_replies_prompter, reply_ranked_1, reply_ranked_2, reply_ranked_3) "
                f"VALUES (:id, 'month', {counters})",
                {"id": u(user)},
            )
        )
    frontend = iter(range(1000))

    def message(
        mid: uuid.UUID,
        tree: uuid.UUID,
        parent: uuid.UUID | None,
        role: str,
        depth: int,
        children: int,
        words: str,
        author: uuid.UUID,
    ) -> tuple[str, dict[str, Any]]:
        payload = {"payload_type": "MessagePayload", "payload": {"text": words}}
        return (
            "INSERT INTO message (id, created_date, payload, depth, children_count, parent_id, "
            "message_tree_id, user_id, role, api_client_id, frontend_message_id, payload_type, "
            "review_count, review_result, lang, emojis) VALUES (:id, :created, :payload, :depth, "
            ":children, :parent, :tree, :user, :role, :client, :frontend, 'MessagePayload', 3, "
            "true, 'en', :emojis)",
            {
                "id": u(mid),
                "created": db.when(WHEN + timedelta(minutes=depth)),
                "payload": json.dumps(payload),
                "depth": depth,
                "children": children,
                "parent": None if parent is None else u(parent),
                "tree": u(tree),
                "user": u(author),
                "role": role,
                "client": u(client),
                "frontend": f"fm-{next(frontend)}",
                "emojis": json.dumps({"+1": depth + 1}),
            },
        )

    def state(
        tree: uuid.UUID, value: str, active: bool, won: bool, goal: int = 3
    ) -> tuple[str, dict[str, Any]]:
        return (
            "INSERT INTO message_tree_state (message_tree_id, goal_tree_size, max_depth, "
            "max_children_count, state, active, origin, won_prompt_lottery_date, lang) VALUES "
            "(:id, :goal, 3, 3, :state, :active, 'oa-live', :won, 'en')",
            {
                "id": u(tree),
                "goal": goal,
                "state": value,
                "active": active,
                "won": db.when(WHEN) if won else None,
            },
        )

    # A growing tree with its goal reached (root and two accepted replies).
    replies = [uuid.uuid4(), uuid.uuid4()]
    statements.append(
        message(
            trees.growing, trees.growing, None, "prompter", 0, 2, "Root of a growing tree", users[0]
        )
    )
    statements += [
        message(r, trees.growing, trees.growing, "assistant", 1, 0, f"Reply {n}", users[1])
        for n, r in enumerate(replies)
    ]
    statements.append(state(trees.growing, "growing", True, True))
    for n, waiting in enumerate(trees.waiting):
        statements.append(
            message(waiting, waiting, None, "prompter", 0, 0, f"Waiting prompt {n}", users[n])
        )
        statements.append(state(waiting, "prompt_lottery_waiting", False, False))
    statements.append(
        message(trees.halted, trees.halted, None, "prompter", 0, 0, "A halted prompt", users[2])
    )
    statements.append(state(trees.halted, "halted_by_moderator", False, True))
    statements.append(
        message(trees.exported, trees.exported, None, "prompter", 0, 0, "Ready prompt é", users[2])
    )
    statements.append(state(trees.exported, "ready_for_export", False, True))
    async with db.engine.begin() as conn:
        for sql, parameters in statements:
            await conn.execute(text(sql), parameters)
    return trees


def definitions(db: OpenAssistantDatabase) -> str:
    """The exact definitions of every table that is not Treegate's."""
    if db.backend == "postgresql":
        dumped = subprocess.run(
            [
                str(find_bin_dir() / "pg_dump"),
                "--schema-only",
                "--no-owner",
                "--exclude-table=treegate_*",
                db.url,
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        # pg_dump 15.14+ brackets its output with `\restrict <random key>`: not a definition.
        return "\n".join(
            line
            for line in dumped.stdout.splitlines()
            if not line.startswith(("\\restrict", "\\unrestrict"))
        )
    import sqlite3

    path = make_url(db.url).database
    assert path is not None
    with sqlite3.connect(path) as connection:
        rows = connection.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE name NOT LIKE 'treegate_%' AND tbl_name NOT LIKE 'treegate_%' ORDER BY name"
        ).fetchall()
    return "\n".join(repr(r) for r in rows)


async def table_names(db: OpenAssistantDatabase) -> set[str]:
    query = (
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        if db.backend == "postgresql"
        else "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    async with db.engine.connect() as conn:
        return set((await conn.scalars(text(query))).all())


TREE_QUERY = """query($id: UUID!) { messageTreeState(messageTreeId: $id) {
  state active origin lang wonPromptLotteryDate messageCount rootMessage { text userId } } }"""
PAGE = "{ messageTreeStates(first: 10) { totalCount edges { node { messageTreeId state } } } }"
COUNTS = "{ treeStateCounts { state count } }"
APPLIED = "__typename ... on TransitionApplied { tree { state } transition { fromState toState } }"


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_treegate_attaches_to_an_open_assistant_database_and_never_alters_its_tables(
    backend: str, tmp_path: Path
) -> None:
    async with open_assistant_database(backend, tmp_path) as db:
        trees = await fill(db)
        before = definitions(db)
        tables_before = await table_names(db)
        env = clean_env() | {"TREEGATE_DATABASE_URL": db.url}

        migrated = run_cli(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        added = await table_names(db) - tables_before
        assert added, "no table was created"
        assert all(name.startswith("treegate_") for name in added), added
        assert definitions(db) == before

        settings = Settings(
            database_url=db.url, anonymous_role="admin", count_cache_s=0, response_cache_s=0
        )
        async with app_client(settings) as (_app, client):
            page = await data(client, PAGE)
            assert page["messageTreeStates"]["totalCount"] == 5
            counts = {
                c["state"]: c["count"] for c in (await data(client, COUNTS))["treeStateCounts"]
            }
            assert counts["PROMPT_LOTTERY_WAITING"] == 2
            growing = (await data(client, TREE_QUERY, {"id": str(trees.growing)}))[
                "messageTreeState"
            ]
            assert growing["messageCount"] == 3
            assert growing["rootMessage"]["text"] == "Root of a growing tree"
            assert growing["origin"] == "oa-live"

            moved = await data(
                client,
                "mutation($i: TransitionTreeInput!) { r: transitionTree(input: $i) { "
                + APPLIED
                + " } }",
                {"i": {"messageTreeId": str(trees.growing), "to": "RANKING"}},
            )
            assert moved["r"]["tree"] == {"state": "RANKING"}, moved
            halted = await data(
                client,
                "mutation($i: HaltTreeInput!) { r: haltTree(input: $i) { " + APPLIED + " } }",
                {"i": {"messageTreeId": str(trees.exported), "reason": "attach test"}},
            )
            assert halted["r"]["tree"] == {"state": "HALTED_BY_MODERATOR"}
            resumed = await data(
                client,
                "mutation($i: ResumeTreeInput!) { r: resumeTree(input: $i) { " + APPLIED + " } }",
                {"i": {"messageTreeId": str(trees.halted)}},
            )
            assert resumed["r"]["tree"] == {"state": "GROWING"}  # it had won the lottery
            drawn = await data(
                client,
                'mutation { r: drawPromptLottery(input: {lang: "en", maxActivate: 2}) {'
                " __typename ... on LotteryDrawn { drawn { messageTreeId state } } } }",
            )
            assert sorted(d["messageTreeId"] for d in drawn["r"]["drawn"]) == sorted(
                str(t) for t in trees.waiting
            )
        async with db.engine.connect() as conn:
            states: dict[Any, str] = dict(
                (
                    await conn.execute(
                        text("SELECT message_tree_id, state FROM message_tree_state")
                    )
                ).all()
            )
            logged = await conn.scalar(text("SELECT count(*) FROM treegate_transition"))
        assert sorted(states.values()) == sorted(
            ["ranking", "halted_by_moderator", "growing", "growing", "growing"]
        )
        assert logged == 5  # one row per change: transition, halt, resume, two draws

        exported = tmp_path / "export.jsonl"
        done = run_cli(env, "export", str(exported), "--state", "growing")
        assert done.returncode == 0, done.stderr
        lines = [json.loads(line) for line in exported.read_text().splitlines()]
        assert sorted(t["message_tree_id"] for t in lines) == sorted(
            [str(trees.halted), *(str(t) for t in trees.waiting)]
        )
        assert all(t["prompt"]["message_id"] == t["message_tree_id"] for t in lines)

        refused = run_cli(env, "import", str(exported))
        assert refused.returncode == 1
        assert "api_client_id" in refused.stderr
        assert "nothing" not in refused.stdout
        async with db.engine.connect() as conn:
            assert await conn.scalar(text("SELECT count(*) FROM message")) == 7

        assert definitions(db) == before


MESSAGES = """query($tree: UUID!, $search: String!) {
  messageTreeState(messageTreeId: $tree) {
    messages { id text depth } longestConversation { text } messageWithMostChildren { text }
  }
  found: messages(filter: {search: $search}, orderBy: CREATED_DATE_ASC) {
    totalCount nodes { id text treeState { state } emojis { emoji count } }
  }
}"""


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
async def test_messages_and_search_on_an_open_assistant_database(
    backend: str, tmp_path: Path
) -> None:
    async with open_assistant_database(backend, tmp_path) as db:
        trees = await fill(db)
        before = definitions(db)
        if backend == "postgresql":
            # Open-Assistant's periodic job fills `search_vector` (its text under its
            # language's configuration); Treegate only reads it.
            async with db.engine.begin() as conn:
                await conn.execute(
                    text(
                        "UPDATE message SET search_vector = "
                        "to_tsvector('english', payload -> 'payload' ->> 'text')"
                    )
                )
        env = clean_env() | {"TREEGATE_DATABASE_URL": db.url}
        migrated = run_cli(env, "migrate")
        assert migrated.returncode == 0, migrated.stderr
        assert definitions(db) == before

        settings = Settings(database_url=db.url, count_cache_s=0, response_cache_s=0)
        async with app_client(settings) as (_app, client):
            result = await data(
                client, MESSAGES, {"tree": str(trees.growing), "search": "reply or halted"}
            )
        tree = result["messageTreeState"]
        root, *replies = tree["messages"]
        assert (root["text"], root["depth"]) == ("Root of a growing tree", 0)
        # Unranked replies created at the same time: by id.
        assert [r["id"] for r in replies] == sorted(r["id"] for r in replies)
        assert sorted(r["text"] for r in replies) == ["Reply 0", "Reply 1"]
        assert {r["depth"] for r in replies} == {1}
        # Equally long conversations: the one ending in the earliest leaf (same time: by id).
        assert [m["text"] for m in tree["longestConversation"]] == [
            "Root of a growing tree",
            replies[0]["text"],
        ]
        assert tree["messageWithMostChildren"] == {"text": "Root of a growing tree"}
        found = result["found"]
        assert found["totalCount"] == 3
        halted, *found_replies = found["nodes"]
        assert (halted["text"], halted["treeState"]["state"]) == (
            "A halted prompt",
            "HALTED_BY_MODERATOR",
        )
        assert [r["id"] for r in found_replies] == [r["id"] for r in replies]
        assert {r["treeState"]["state"] for r in found_replies} == {"GROWING"}
        assert found_replies[0]["emojis"] == [{"emoji": "+1", "count": 2}]
        assert definitions(db) == before
