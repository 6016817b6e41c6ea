"""Message trees whose every answer is known: ranks that tie, a deleted reply, a rejected one
below an accepted one, emojis, and a second tree in German.

`KNOWN` names each message of the English tree:

    root            prompter  accepted, emojis +1 x3, red_flag x1
    ├── a_best      assistant rank 0, accepted
    │   └── p_spam  prompter  rejected (review_result false)
    │       └── a_under_spam   assistant accepted
    ├── a_second    assistant rank 1, accepted
    │   └── p_follow           prompter accepted
    │       └── a_deep         assistant unranked, accepted (the deepest accepted message)
    ├── a_tie_late  assistant unranked, accepted, created after a_tie_early
    ├── a_tie_early assistant unranked, accepted
    └── a_deleted   assistant unranked, deleted

Children are listed by rank, unranked last, then by creation date, so the root's are
a_best, a_second, a_tie_early, a_tie_late (and a_deleted, when deleted ones are asked for),
although a_tie_late was inserted first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.tables import message, message_tree_state
from tests.factories import payload

T0 = datetime(2023, 5, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Row:
    name: str
    parent: str | None
    role: str
    minute: int
    text: str
    rank: int | None = None
    review_result: bool | None = True
    deleted: bool = False
    emojis: dict[str, int] = field(default_factory=dict)


KNOWN = (
    Row(
        "root",
        None,
        "prompter",
        0,
        "How do I sort a list in Python?",
        emojis={"+1": 3, "red_flag": 1},
    ),
    Row("a_tie_late", "root", "assistant", 9, "Use sorted() for a new list."),
    Row("a_best", "root", "assistant", 1, "Call list.sort() to sort in place.", rank=0),
    Row("a_second", "root", "assistant", 2, "The sorted builtin returns a new list.", rank=1),
    Row("a_tie_early", "root", "assistant", 3, "Sorting is stable in Python."),
    Row("a_deleted", "root", "assistant", 4, "Deleted answer about bubble sort.", deleted=True),
    Row("p_spam", "a_best", "prompter", 5, "Buy cheap watches now", review_result=False),
    Row("a_under_spam", "p_spam", "assistant", 6, "I cannot help with that."),
    Row("p_follow", "a_second", "prompter", 7, "Can it sort in reverse order?"),
    Row("a_deep", "p_follow", "assistant", 8, "Pass reverse=True to sort in reverse."),
)
GERMAN = (
    Row("root", None, "prompter", 20, "Wie sortiere ich Listen in Python?"),
    Row(
        "answer", "root", "assistant", 21, "Mit der Funktion sorted werden Listen sortiert.", rank=0
    ),
)


@dataclass(frozen=True)
class Tree:
    id: uuid.UUID
    ids: dict[str, uuid.UUID]
    rows: tuple[Row, ...]

    def __getitem__(self, name: str) -> str:
        return str(self.ids[name])

    def names(self, ids: list[str]) -> list[str]:
        by_id = {str(v): k for k, v in self.ids.items()}
        return [by_id[i] for i in ids]


def _depths(rows: tuple[Row, ...]) -> dict[str, int]:
    by_name = {r.name: r for r in rows}
    depths: dict[str, int] = {}
    for r in rows:
        depth, at = 0, r
        while at.parent is not None:
            depth, at = depth + 1, by_name[at.parent]
        depths[r.name] = depth
    return depths


async def insert(
    conn: AsyncConnection,
    rows: tuple[Row, ...],
    *,
    lang: str = "en",
    state: str = "growing",
    user_id: uuid.UUID | None = None,
) -> Tree:
    ids = {r.name: uuid.uuid4() for r in rows}
    tree_id = ids["root"]
    depths = _depths(rows)
    children = {r.name: sum(1 for c in rows if c.parent == r.name) for r in rows}
    values: list[dict[str, Any]] = [
        {
            "id": ids[r.name],
            "parent_id": None if r.parent is None else ids[r.parent],
            "message_tree_id": tree_id,
            "user_id": user_id,
            "role": r.role,
            "created_date": T0 + timedelta(minutes=r.minute),
            "payload_type": "MessagePayload",
            "payload": payload(r.text),
            "lang": lang,
            "depth": depths[r.name],
            "children_count": children[r.name],
            "deleted": r.deleted,
            "review_count": 3,
            "review_result": r.review_result,
            "rank": r.rank,
            "emojis": r.emojis,
        }
        for r in rows
    ]
    await conn.execute(message.insert(), values)
    await conn.execute(
        message_tree_state.insert(),
        [
            {
                "message_tree_id": tree_id,
                "goal_tree_size": 12,
                "max_depth": 3,
                "max_children_count": 3,
                "state": state,
                "active": True,
                "origin": None,
                "won_prompt_lottery_date": T0,
                "lang": lang,
            }
        ],
    )
    return Tree(tree_id, ids, rows)


async def insert_known(engine: AsyncEngine) -> tuple[Tree, Tree]:
    """The English tree of `KNOWN` and the German one."""
    async with engine.begin() as conn:
        english = await insert(conn, KNOWN)
        german = await insert(conn, GERMAN, lang="de")
    return english, german
