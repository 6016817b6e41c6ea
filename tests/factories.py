"""Plain async factories that write rows the way Open-Assistant stores them."""

from __future__ import annotations

import itertools
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import message, message_tree_state, user, user_stats
from domain.states import State, is_active

BASE_DATE = datetime(2023, 3, 1, tzinfo=UTC)
_counter = itertools.count()


def payload(text: str) -> dict[str, Any]:
    return {"payload_type": "MessagePayload", "payload": {"text": text}}


async def add_user(
    conn: AsyncConnection,
    *,
    enabled: bool = True,
    deleted: bool = False,
    ranked_1: int | None = None,
) -> uuid.UUID:
    user_id = uuid.uuid4()
    n = next(_counter)
    await conn.execute(
        user.insert(),
        [
            {
                "id": user_id,
                "username": f"user-{n}",
                "display_name": f"User {n}",
                "enabled": enabled,
                "deleted": deleted,
            }
        ],
    )
    if ranked_1 is not None:
        await conn.execute(
            user_stats.insert(),
            [{"user_id": user_id, "time_frame": "month", "reply_ranked_1": ranked_1}],
        )
    return user_id


@dataclass(frozen=True)
class TreeSpec:
    state: State = State.GROWING
    lang: str = "en"
    origin: str | None = None
    won_prompt_lottery_date: datetime | None = None
    goal_tree_size: int = 12
    text: str | None = None
    review_result: bool | None = True
    replies: int = 0
    created_date: datetime | None = None


async def add_tree(
    conn: AsyncConnection,
    spec: TreeSpec | None = None,
    *,
    user_id: uuid.UUID | None = None,
    **fields: Any,
) -> uuid.UUID:
    """One tree: its root message (plus `replies` accepted replies) and its state row."""
    spec = spec or TreeSpec(**fields)
    tree_id = uuid.uuid4()
    n = next(_counter)
    created = spec.created_date or BASE_DATE + timedelta(minutes=n)
    rows = [
        {
            "id": tree_id,
            "parent_id": None,
            "message_tree_id": tree_id,
            "user_id": user_id,
            "role": "prompter",
            "created_date": created,
            "payload_type": "MessagePayload",
            "payload": payload(spec.text or f"Prompt number {n}?"),
            "lang": spec.lang,
            "depth": 0,
            "children_count": spec.replies,
            "review_count": 3 if spec.review_result is not None else 0,
            "review_result": spec.review_result,
            "emojis": {},
        }
    ]
    for i in range(spec.replies):
        rows.append(
            {
                "id": uuid.uuid4(),
                "parent_id": tree_id,
                "message_tree_id": tree_id,
                "user_id": user_id,
                "role": "assistant",
                "created_date": created + timedelta(minutes=i + 1),
                "payload_type": "MessagePayload",
                "payload": payload(f"Reply {i} to prompt {n}."),
                "lang": spec.lang,
                "depth": 1,
                "children_count": 0,
                "review_count": 3,
                "review_result": True,
                "emojis": {},
            }
        )
    await conn.execute(message.insert(), rows)
    await conn.execute(
        message_tree_state.insert(),
        [
            {
                "message_tree_id": tree_id,
                "goal_tree_size": spec.goal_tree_size,
                "max_depth": 3,
                "max_children_count": 3,
                "state": spec.state.value,
                "active": is_active(spec.state),
                "origin": spec.origin,
                "won_prompt_lottery_date": spec.won_prompt_lottery_date,
                "lang": spec.lang,
            }
        ],
    )
    return tree_id
