"""Helpers of the lottery tests: bulk seeding, operator keys, snapshots of the database.

Expectations are computed from what a test inserted (which trees it made eligible), never
from the code under test: the candidate rules are restated here in plain Python terms.
"""

from __future__ import annotations

import itertools
import random
import secrets
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import keys
from db.tables import message, message_tree_state, transition, user, user_stats
from domain.outcomes import Identity
from domain.states import State, is_active
from domain.transitions import Role
from resolvers.context import Context, Hooks, Limits, WritePolicy
from tests.factories import payload

WAITING = State.PROMPT_LOTTERY_WAITING
GROWING = State.GROWING
DRAW_OPERATION = "drawPromptLottery"  # how the log names the lottery (Operation's value)

DRAW = """
mutation Draw($lang: String!, $max: Int, $key: String) {
  drawPromptLottery(input: {lang: $lang, maxActivate: $max, idempotencyKey: $key}) {
    __typename
    ... on LotteryDrawn {
      lang growingBefore growingAfter maxActiveTrees message
      drawn { messageTreeId state active wonPromptLotteryDate lang }
    }
    ... on LotteryRejected { lang reason message }
  }
}
"""

STATUS = """
query Status($lang: String) {
  lotteryStatus(lang: $lang) { lang waiting growing maxActiveTrees freeSlots }
}
"""

_numbers = itertools.count()


async def add_author(
    conn: AsyncConnection,
    *,
    enabled: bool = True,
    deleted: bool = False,
    stats: dict[str, int] | None = None,
) -> uuid.UUID:
    """A user, with `user_stats` rows (time frame -> reply_ranked_1) if given."""
    user_id = uuid.uuid4()
    n = next(_numbers)
    await conn.execute(
        user.insert(),
        [
            {
                "id": user_id,
                "username": f"lottery-{n}-{user_id.hex[:8]}",
                "display_name": f"Lottery author {n}",
                "enabled": enabled,
                "deleted": deleted,
            }
        ],
    )
    if stats:
        await conn.execute(
            user_stats.insert(),
            [
                {"user_id": user_id, "time_frame": frame, "reply_ranked_1": ranked}
                for frame, ranked in stats.items()
            ],
        )
    return user_id


async def add_trees(
    conn: AsyncConnection,
    n: int,
    *,
    author: uuid.UUID | None,
    state: State = WAITING,
    lang: str = "en",
    review_result: bool | None = True,
    root_deleted: bool = False,
    won: datetime | None = None,
) -> list[uuid.UUID]:
    """`n` one-message trees (the root prompt and its state row), in two statements."""
    if n == 0:
        return []
    ids = [uuid.uuid4() for _ in range(n)]
    await conn.execute(
        message.insert(),
        [
            {
                "id": tree_id,
                "parent_id": None,
                "message_tree_id": tree_id,
                "user_id": author,
                "role": "prompter",
                "payload_type": "MessagePayload",
                "payload": payload(f"Prompt {tree_id.hex[:8]}?"),
                "lang": lang,
                "depth": 0,
                "review_count": 0 if review_result is None else 3,
                "review_result": review_result,
                "deleted": root_deleted,
                "emojis": {},
            }
            for tree_id in ids
        ],
    )
    await conn.execute(
        message_tree_state.insert(),
        [
            {
                "message_tree_id": tree_id,
                "goal_tree_size": 12,
                "max_depth": 3,
                "max_children_count": 3,
                "state": state.value,
                "active": is_active(state),
                "origin": None,
                "won_prompt_lottery_date": won,
                "lang": lang,
            }
            for tree_id in ids
        ],
    )
    return ids


async def add_operator_key(engine: AsyncEngine, name: str) -> dict[str, str]:
    """An operator API key named `name`; returns the headers that present it."""
    key = f"tg_{secrets.token_urlsafe(24)}"
    async with engine.begin() as conn:
        await keys.insert(conn, name, Role.OPERATOR, key, datetime.now(UTC))
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class TreeRow:
    state: State
    active: bool
    won: datetime | None
    lang: str


async def trees(engine: AsyncEngine) -> dict[uuid.UUID, TreeRow]:
    """Every `message_tree_state` row, by id."""
    mts = message_tree_state
    columns = (mts.c.state, mts.c.active, mts.c.won_prompt_lottery_date, mts.c.lang)
    async with engine.connect() as conn:
        rows = (await conn.execute(select(mts.c.message_tree_id, *columns))).all()
    return {
        row.message_tree_id: TreeRow(State(row.state), bool(row.active), row[3], row.lang)
        for row in rows
    }


def counts(rows: dict[uuid.UUID, TreeRow]) -> Counter[tuple[str, State]]:
    """Trees per (language, state)."""
    return Counter((row.lang, row.state) for row in rows.values())


@dataclass(frozen=True)
class LogRow:
    sequence: int
    tree_id: uuid.UUID
    from_state: str | None
    to_state: str
    operation: str
    actor: str | None


async def log_rows(engine: AsyncEngine, after: int = 0) -> list[LogRow]:
    """Transition log rows with a sequence above `after`, oldest first."""
    t = transition
    query = (
        select(t.c.sequence, t.c.message_tree_id, t.c.from_state, t.c.to_state)
        .add_columns(t.c.operation, t.c.actor)
        .where(t.c.sequence > after)
        .order_by(t.c.sequence)
    )
    async with engine.connect() as conn:
        return [LogRow(*row) for row in await conn.execute(query)]


async def last_sequence(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        value = (await conn.execute(select(func.max(transition.c.sequence)))).scalar_one()
    return int(value or 0)


async def put_back(conn: AsyncConnection, tree_ids: list[uuid.UUID]) -> None:
    """Move drawn trees back to waiting (as if never drawn), so the pool stays the same."""
    mts = message_tree_state
    await conn.execute(
        update(mts)
        .where(mts.c.message_tree_id.in_(tree_ids))
        .values(state=WAITING.value, active=False, won_prompt_lottery_date=None)
    )


def operator_context(
    engine: AsyncEngine,
    *,
    name: str = "lottery-operator",
    max_active_trees: int = 10,
    rng: random.Random | None = None,
    hooks: Hooks | None = None,
) -> Context:
    """A context as the GraphQL view builds one, for an operator key, to call use cases."""
    ctx = Context.create(
        engine,
        Limits(),
        f"test-{uuid.uuid4().hex[:8]}",
        identity=Identity(name, Role.OPERATOR),
        policy=WritePolicy(max_active_trees=max_active_trees, rng=rng or random.Random(0)),
    )
    if hooks is not None:
        ctx.hooks = hooks
    return ctx


def drawn_ids(result: dict[str, Any]) -> list[str]:
    """The tree ids of a `LotteryDrawn` from the API."""
    assert result["__typename"] == "LotteryDrawn", result
    return [tree["messageTreeId"] for tree in result["drawn"]]
