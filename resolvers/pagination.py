"""Opaque keyset cursors and page-size checks."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from uuid import UUID

from domain.errors import InvalidInput
from domain.values import SortKey, TreeOrder, TreeState

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
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, order: TreeOrder, argument: str = "after") -> SortKey:
    """The sort key inside `cursor`; BAD_USER_INPUT if it is malformed or for another order."""
    try:
        # Ours are about 110 characters; anything much longer is not one, and decoding it
        # could be costly (or, deeply nested JSON, exceed the recursion limit).
        if len(cursor) > _MAX_CURSOR_LENGTH:
            raise ValueError("cursor too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        version, code, tree_hex, date_text = payload
        if version != _VERSION or code not in _ORDERS_BY_CODE:
            raise ValueError("unknown cursor version or order")
        if not isinstance(tree_hex, str) or not isinstance(date_text, str | None):
            raise ValueError("cursor id or date is not a string")
        tree_id = UUID(hex=tree_hex)
        date = None if date_text is None else datetime.fromisoformat(date_text)
        if date is not None and date.tzinfo is None:
            raise ValueError("cursor date has no time zone")
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidInput(argument, f"`{argument}` is not a valid cursor") from None
    if _ORDERS_BY_CODE[code] is not order:
        raise InvalidInput(
            argument,
            f"`{argument}` is a cursor for order {_ORDERS_BY_CODE[code].name}, "
            f"not {order.name}: restart pagination without it",
        )
    return SortKey(date, tree_id)
