"""The transition log, `treegate_transition`.

Its sequence is taken from a counter row under a row lock (PostgreSQL) or inside SQLite's write
lock, and the lock is held until commit: sequence order is commit order, so a poller that reads
"after sequence N" never misses a row that commits later with a smaller number.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Row, func, literal, select
from sqlalchemy.ext.asyncio import AsyncConnection

from db.tables import counter, transition
from db.trees import parse_state
from db.types import dialect_insert
from domain.outcomes import StateTransition
from domain.states import State
from domain.transitions import Operation

LOG_COUNTER = "transition"

LOG_COLUMNS = (
    transition.c.sequence,
    transition.c.message_tree_id,
    transition.c.from_state,
    transition.c.to_state,
    transition.c.operation,
    transition.c.actor,
    transition.c.reason,
    transition.c.at,
    transition.c.bulk_operation_id,
)


def to_transition(row: Row[*tuple[Any, ...]]) -> StateTransition:
    return StateTransition(
        sequence=int(row.sequence),
        message_tree_id=row.message_tree_id,
        from_state=None if row.from_state is None else parse_state(row.from_state),
        to_state=parse_state(row.to_state),
        operation=Operation(row.operation),
        actor=row.actor,
        reason=row.reason,
        at=row.at,
        bulk_operation_id=row.bulk_operation_id,
    )


def _next_value_statement(conn: AsyncConnection, name: str) -> Any:
    return (
        dialect_insert(conn, counter)
        .values(name=name, value=1)
        .on_conflict_do_update(index_elements=[counter.c.name], set_={"value": counter.c.value + 1})
        .returning(counter.c.value)
    )


async def next_value(conn: AsyncConnection, name: str) -> int:
    """Increment a counter and return its new value; the row stays locked until commit."""
    return int((await conn.execute(_next_value_statement(conn, name))).scalar_one())


async def append(
    conn: AsyncConnection,
    *,
    tree_id: UUID,
    from_state: State | None,
    to_state: State,
    operation: Operation,
    actor: str | None,
    reason: str | None,
    at: datetime,
    bulk_operation_id: UUID | None = None,
) -> StateTransition:
    """Write one log row, its sequence taken from the counter (locked until commit).

    Every write of every process waits for that lock, so it is taken last and held briefly:
    on PostgreSQL the counter's increment and the row's insert are one statement (the
    increment in a data-modifying WITH), one round trip before the COMMIT; SQLite, whose
    transaction holds the database's write lock anyway, runs the two in turn.
    """
    values = {
        "message_tree_id": tree_id,
        "from_state": None if from_state is None else from_state.value,
        "to_state": to_state.value,
        "operation": operation.value,
        "actor": actor,
        "reason": reason,
        "at": at,
        "bulk_operation_id": bulk_operation_id,
    }
    if conn.dialect.name == "postgresql":
        sequence = _next_value_statement(conn, LOG_COUNTER).cte("next_sequence")
        row = select(
            sequence.c.value,
            *(literal(value, transition.c[name].type) for name, value in values.items()),
        )
        statement = (
            transition.insert()
            .from_select(["sequence", *values], row)
            .returning(transition.c.sequence)
        )
        number = int((await conn.execute(statement)).scalar_one())
    else:
        number = await next_value(conn, LOG_COUNTER)
        await conn.execute(transition.insert().values(sequence=number, **values))
    return StateTransition(
        sequence=number,
        message_tree_id=tree_id,
        from_state=from_state,
        to_state=to_state,
        operation=operation,
        actor=actor,
        reason=reason,
        at=at,
        bulk_operation_id=bulk_operation_id,
    )


async def newest_for_trees(
    conn: AsyncConnection, tree_ids: Sequence[UUID], first: int
) -> dict[UUID, list[StateTransition]]:
    """The newest `first` log rows of each tree, newest first, in one statement."""
    if not tree_ids:
        return {}
    ranked = (
        select(
            *LOG_COLUMNS,
            func.row_number()
            .over(partition_by=transition.c.message_tree_id, order_by=transition.c.sequence.desc())
            .label("rank"),
        )
        .where(transition.c.message_tree_id.in_(set(tree_ids)))
        .subquery()
    )
    query = (
        select(*(ranked.c[c.name] for c in LOG_COLUMNS))
        .where(ranked.c.rank <= first)
        .order_by(ranked.c.message_tree_id, ranked.c.sequence.desc())
    )
    found: dict[UUID, list[StateTransition]] = {tree_id: [] for tree_id in tree_ids}
    for row in await conn.execute(query):
        found[row.message_tree_id].append(to_transition(row))
    return found


async def feed(
    conn: AsyncConnection, *, after: int, limit: int, tree_id: UUID | None = None
) -> list[StateTransition]:
    """Log rows with a sequence above `after`, oldest first."""
    query = select(*LOG_COLUMNS).where(transition.c.sequence > after)
    if tree_id is not None:
        query = query.where(transition.c.message_tree_id == tree_id)
    query = query.order_by(transition.c.sequence).limit(limit)
    return [to_transition(row) for row in await conn.execute(query)]
