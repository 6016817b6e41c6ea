"""Reading the transition log: per tree (batched) and as a feed dashboards poll."""

from __future__ import annotations

import base64
import binascii
from uuid import UUID

from db import log
from domain.errors import InvalidInput
from domain.outcomes import StateTransition
from resolvers.context import Context
from resolvers.pagination import Page, check_first, keyset_page

_PREFIX = "log:"


def encode_log_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{sequence}".encode()).decode().rstrip("=")


def decode_log_cursor(cursor: str) -> int:
    try:
        if len(cursor) > 64:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii"))
        text = raw.decode()
        if not text.startswith(_PREFIX):
            raise ValueError("not a log cursor")
        sequence = int(text.removeprefix(_PREFIX))
        if sequence < 0:
            raise ValueError("negative")
    except (ValueError, UnicodeError, binascii.Error):
        raise InvalidInput("after", "`after` is not a valid transition log cursor") from None
    return sequence


LogPage = Page[StateTransition]


async def transition_feed(
    ctx: Context, after: str | None, first: int, tree_id: UUID | None
) -> LogPage:
    """Log rows after the cursor, oldest first. An empty page keeps the cursor for the next poll."""
    check_first(first, ctx.limits.max_page_size)
    position = 0 if after is None else decode_log_cursor(after)
    async with ctx.db.use() as conn:
        rows = await log.feed(conn, after=position, limit=first + 1, tree_id=tree_id)
    return keyset_page(
        rows,
        first,
        lambda row: encode_log_cursor(row.sequence),
        has_previous_page=position > 0,
        empty_end_cursor=after,
    )


async def tree_transitions(ctx: Context, tree_id: UUID, first: int) -> list[StateTransition]:
    """The tree's newest `first` log rows, newest first (batched across a page of trees)."""
    check_first(first, ctx.limits.max_page_size)
    return await ctx.loaders.transitions(first).load(tree_id)
