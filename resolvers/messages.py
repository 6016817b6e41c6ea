"""Reading messages: one by id, pages of them (with search), and their trees.

Everything tree-shaped is computed from one read of the whole tree (`Loaders.message_tree`,
shaped by `domain.message_trees`); everything per message is batched by a DataLoader.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from db import messages
from domain.errors import InvalidInput
from domain.message_trees import MessageTree, visible
from domain.values import Message, MessageFilter, MessageKey, MessageOrder, TreeState
from resolvers.context import Context
from resolvers.pagination import Page, check_first, keyset_page, pack_cursor, unpack_cursor

MessagePage = Page[Message]
ROLES = ("prompter", "assistant")
"""The roles of Open-Assistant's messages."""

_VERSION = 1
_ORDER_CODES = {MessageOrder.CREATED_DATE_ASC: "ca", MessageOrder.CREATED_DATE_DESC: "cd"}
_ORDERS_BY_CODE = {code: order for order, code in _ORDER_CODES.items()}


def encode_cursor(order: MessageOrder, message: Message) -> str:
    created = message.created_date
    date = None if created is None else created.isoformat()
    return pack_cursor([_VERSION, _ORDER_CODES[order], message.id.hex, date])


def decode_cursor(cursor: str, order: MessageOrder, argument: str = "after") -> MessageKey:
    message_id, date = unpack_cursor(cursor, _ORDERS_BY_CODE, order, argument)
    if date is None:
        raise InvalidInput(argument, f"`{argument}` is not a valid cursor")
    return MessageKey(date, message_id)


def check_filter(message_filter: MessageFilter) -> MessageFilter:
    if message_filter.role is not None and message_filter.role not in ROLES:
        raise InvalidInput(
            "filter.role",
            f"`filter.role` must be one of {', '.join(ROLES)}, got {message_filter.role!r}",
        )
    return message_filter


async def get_message(ctx: Context, message_id: UUID) -> Message | None:
    return await ctx.loaders.message.load(message_id)


def _total(message_filter: MessageFilter) -> Callable[[Context], Awaitable[int]]:
    async def total(ctx: Context) -> int:
        async def count() -> int:
            async with ctx.db.reads() as reads:
                rows = await reads.rows(messages.count_query(message_filter, pg=reads.pg))
            return int(rows[0][0])

        return await ctx.caches.counts.get(("messages", message_filter), count)

    return total


async def list_messages(
    ctx: Context,
    message_filter: MessageFilter,
    order: MessageOrder,
    first: int,
    after: str | None,
) -> MessagePage:
    """A page of messages in keyset order on (created_date, id): stable under inserts."""
    check_first(first, ctx.limits.max_page_size)
    check_filter(message_filter)
    position = None if after is None else decode_cursor(after, order)
    async with ctx.db.reads() as reads:
        query = messages.page_query(message_filter, order, first + 1, position, pg=reads.pg)
        rows = await reads.rows(query)
    page = keyset_page(
        [messages.to_message(row) for row in rows],
        first,
        lambda m: encode_cursor(order, m),
        has_previous_page=position is not None,
        total=_total(message_filter),
    )
    for m in page.nodes:
        ctx.loaders.message.prime(m.id, m)
    return page


async def message_tree(ctx: Context, tree_id: UUID) -> MessageTree:
    return await ctx.loaders.message_tree.load(tree_id)


async def tree_messages(
    ctx: Context, tree_id: UUID, *, include_deleted: bool, include_spam: bool
) -> list[Message]:
    tree = await message_tree(ctx, tree_id)
    return tree.messages_in_order(include_deleted=include_deleted, include_spam=include_spam)


async def children(ctx: Context, message: Message, *, include_deleted: bool) -> list[Message]:
    found = await ctx.loaders.children.load(message.id)
    return [m for m in found if visible(m, include_deleted=include_deleted, include_spam=True)]


async def parent(ctx: Context, message: Message) -> Message | None:
    if message.parent_id is None:
        return None
    return await ctx.loaders.message.load(message.parent_id)


async def conversation(ctx: Context, message: Message) -> list[Message]:
    tree = await message_tree(ctx, message.message_tree_id)
    return tree.conversation(message.id) or [message]


async def descendants(ctx: Context, message: Message, *, include_deleted: bool) -> list[Message]:
    tree = await message_tree(ctx, message.message_tree_id)
    # The message itself comes first even when deleted: it is the one asked about.
    return tree.depth_first(
        message.id,
        lambda m: (
            m.id == message.id or visible(m, include_deleted=include_deleted, include_spam=True)
        ),
    )


async def tree_state(ctx: Context, message: Message) -> TreeState | None:
    return await ctx.loaders.tree.load(message.message_tree_id)


async def emojis(ctx: Context, message: Message) -> list[tuple[str, int]]:
    """The message's emoji counts, the most used first (then by name)."""
    counts = await ctx.loaders.emojis.load(message.id)
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))
