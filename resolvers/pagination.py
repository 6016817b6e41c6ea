"""Keyset pages, whatever their rows; opaque cursors and page-size checks.

A `Page` is what every paginated field returns (pages of trees, of the transition log); the
GraphQL connection types (`schema.connection`) serve it as it is.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Generic, NamedTuple, TypeVar
from uuid import UUID

from domain.errors import InvalidInput
from domain.values import SortKey, TreeOrder, TreeState
from resolvers.context import Context

N = TypeVar("N")


class Edge(NamedTuple, Generic[N]):
    node: N
    cursor_of: Callable[[N], str]

    @property
    def cursor(self) -> str:
        # Encoded only when a client selects it (or the page's end), not for every row.
        return self.cursor_of(self.node)


@dataclass(frozen=True, slots=True)
class Page(Generic[N]):
    """One page of rows in keyset order: stable when rows are inserted between pages."""

    edges: tuple[Edge[N], ...]
    has_next_page: bool
    has_previous_page: bool
    empty_end_cursor: str | None = None
    """`end_cursor` of an empty page: None, or the cursor asked after (a feed polled from it)."""
    total: Callable[[Context], Awaitable[int]] | None = None
    """Counts the rows on every page, for lists that offer a total (only when asked for)."""

    @property
    def nodes(self) -> list[N]:
        return [edge.node for edge in self.edges]

    @property
    def start_cursor(self) -> str | None:
        return self.edges[0].cursor if self.edges else None

    @property
    def end_cursor(self) -> str | None:
        return self.edges[-1].cursor if self.edges else self.empty_end_cursor

    async def total_count(self, ctx: Context) -> int:
        if self.total is None:
            raise TypeError("this list has no total count")
        return await self.total(ctx)


def keyset_page(
    rows: Sequence[N],
    first: int,
    cursor_of: Callable[[N], str],
    *,
    has_previous_page: bool,
    empty_end_cursor: str | None = None,
    total: Callable[[Context], Awaitable[int]] | None = None,
) -> Page[N]:
    """The page of `rows`, read with one more row than `first` to learn if another follows."""
    return Page(
        edges=tuple(Edge(row, cursor_of) for row in rows[:first]),
        has_next_page=len(rows) > first,
        has_previous_page=has_previous_page,
        empty_end_cursor=empty_end_cursor,
        total=total,
    )


_VERSION = 1
_MAX_CURSOR_LENGTH = 256
_ORDER_CODES = {
    TreeOrder.MESSAGE_TREE_ID_ASC: "ia",
    TreeOrder.MESSAGE_TREE_ID_DESC: "id",
    TreeOrder.WON_LOTTERY_DATE_ASC: "wa",
    TreeOrder.WON_LOTTERY_DATE_DESC: "wd",
}
_ORDERS_BY_CODE = {code: order for order, code in _ORDER_CODES.items()}


def check_first(first: int, max_page_size: int, argument: str = "first") -> int:
    if not 1 <= first <= max_page_size:
        raise InvalidInput(
            argument, f"`{argument}` must be between 1 and {max_page_size}, got {first}"
        )
    return first


def sort_key(tree: TreeState) -> SortKey:
    return SortKey(tree.won_prompt_lottery_date, tree.message_tree_id)


def encode_cursor(order: TreeOrder, key: SortKey) -> str:
    """A cursor names a position in one order: the sort key of the last row seen."""
    date = key.won_prompt_lottery_date
    uses_date = order in (TreeOrder.WON_LOTTERY_DATE_ASC, TreeOrder.WON_LOTTERY_DATE_DESC)
    payload = [
        _VERSION,
        _ORDER_CODES[order],
        key.message_tree_id.hex,
        date.isoformat() if uses_date and date is not None else None,
    ]
    return pack_cursor(payload)


def pack_cursor(payload: list[object]) -> str:
    """An opaque cursor holding `payload` (`[version, order code, id hex, date or null]`)."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def unpack_cursor(
    cursor: str, codes: Mapping[str, Enum], order: Enum, argument: str = "after"
) -> tuple[UUID, datetime | None]:
    """The id and date inside a cursor of `order` (one of `codes`' values); BAD_USER_INPUT if
    it is malformed or for another order."""
    try:
        # Ours are about 110 characters; anything much longer is not one, and decoding it
        # could be costly (or, deeply nested JSON, exceed the recursion limit).
        if len(cursor) > _MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        version, code, id_hex, date_text = payload
        if version != _VERSION or code not in codes:
            raise ValueError("unknown cursor version or order")
        if not isinstance(id_hex, str) or not isinstance(date_text, str | None):
            raise ValueError("cursor id or date is not a string")
        ident = UUID(hex=id_hex)
        date = None if date_text is None else datetime.fromisoformat(date_text)
        if date is not None and date.tzinfo is None:
            raise ValueError("cursor date has no time zone")
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidInput(argument, f"`{argument}` is not a valid cursor") from None
    if codes[code] is not order:
        raise InvalidInput(
            argument,
            f"`{argument}` is a cursor for order {codes[code].name}, "
            f"not {order.name}: restart pagination without it",
        )
    return ident, date


def decode_cursor(cursor: str, order: TreeOrder, argument: str = "after") -> SortKey:
    """The sort key inside `cursor`; BAD_USER_INPUT if it is malformed or for another order."""
    tree_id, date = unpack_cursor(cursor, _ORDERS_BY_CODE, order, argument)
    return SortKey(date, tree_id)
