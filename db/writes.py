"""State changes on `message_tree_state`, and the facts the guards read from `message`."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, case, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import message
from db.tables import message_tree_state as mts
from db.trees import TREE_COLUMNS, to_tree
from domain.guards import TreeFacts
from domain.states import State, is_active
from domain.values import TreeState


async def compare_and_set(
    conn: AsyncConnection, tree_id: UUID, expected: State, target: State, now: datetime
) -> TreeState | None:
    """Move the tree from `expected` to `target` if it is still in `expected`.

    One statement: `UPDATE ... WHERE message_tree_id = :id AND state = :expected`. None means
    the tree was no longer in `expected` (someone else moved it first). `active` follows the
    state, and entering `growing` sets `won_prompt_lottery_date` if it was null.
    """
    values: dict[str, object] = {"state": target.value, "active": is_active(target)}
    if target is State.GROWING:
        values["won_prompt_lottery_date"] = func.coalesce(mts.c.won_prompt_lottery_date, now)
    statement = (
        update(mts)
        .where(mts.c.message_tree_id == tree_id, mts.c.state == expected.value)
        .values(values)
        .returning(*TREE_COLUMNS)
    )
    row = (await conn.execute(statement)).first()
    return None if row is None else to_tree(row)


async def tree_facts(conn: AsyncConnection, tree: TreeState) -> TreeFacts:
    """Root review result and message counts of one tree, in one statement."""
    is_root = message.c.id == tree.message_tree_id
    live = message.c.deleted.is_not(True)
    query = select(
        func.count().filter(is_root).label("roots"),
        func.max(case((is_root, case((message.c.review_result.is_(True), 1), else_=0)))).label(
            "root_accepted"
        ),
        func.max(case((and_(is_root, message.c.review_result.is_(None)), 1), else_=0)).label(
            "root_pending"
        ),
        func.count().filter(live, message.c.review_result.is_(True)).label("accepted"),
        func.count().filter(live, message.c.review_result.is_(None)).label("pending"),
    ).where(message.c.message_tree_id == tree.message_tree_id)
    row = (await conn.execute(query)).one()
    root_found = bool(row.roots)
    review: bool | None = None
    if root_found and not row.root_pending:
        review = bool(row.root_accepted)
    return TreeFacts(
        root_found=root_found,
        root_review_result=review,
        accepted_messages=int(row.accepted or 0),
        awaiting_review=int(row.pending or 0),
        goal_tree_size=tree.goal_tree_size,
        won_prompt_lottery_date=tree.won_prompt_lottery_date,
    )
