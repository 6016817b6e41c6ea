"""Opaque keyset cursors: round trips, malformed input, and page-size bounds."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from domain.errors import InvalidInput
from domain.states import State
from domain.values import SortKey, TreeOrder, TreeState
from resolvers.pagination import check_first, decode_cursor, encode_cursor, sort_key

DATE_ORDERS = (TreeOrder.WON_LOTTERY_DATE_ASC, TreeOrder.WON_LOTTERY_DATE_DESC)
ID_ORDERS = (TreeOrder.MESSAGE_TREE_ID_ASC, TreeOrder.MESSAGE_TREE_ID_DESC)
TREE_ID = UUID("12345678-9abc-4def-8123-456789abcdef")

DATES = [
    datetime(2023, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
    datetime(2023, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2022, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-8))),
]


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _payload(*items: object) -> str:
    return _b64(json.dumps(list(items)).encode())


@pytest.mark.parametrize("order", list(TreeOrder), ids=lambda o: o.name)
def test_round_trip_without_date(order: TreeOrder) -> None:
    key = SortKey(None, TREE_ID)
    cursor = encode_cursor(order, key)
    assert decode_cursor(cursor, order) == key


@pytest.mark.parametrize("order", DATE_ORDERS, ids=lambda o: o.name)
@pytest.mark.parametrize("date", DATES, ids=str)
def test_round_trip_with_date(order: TreeOrder, date: datetime) -> None:
    tree_id = uuid4()
    decoded = decode_cursor(encode_cursor(order, SortKey(date, tree_id)), order)
    assert decoded.message_tree_id == tree_id
    assert decoded.won_prompt_lottery_date == date
    assert decoded.won_prompt_lottery_date is not None
    assert decoded.won_prompt_lottery_date.utcoffset() == date.utcoffset()


@pytest.mark.parametrize("order", ID_ORDERS, ids=lambda o: o.name)
def test_id_orders_drop_the_date(order: TreeOrder) -> None:
    cursor = encode_cursor(order, SortKey(DATES[1], TREE_ID))
    assert decode_cursor(cursor, order) == SortKey(None, TREE_ID)
    assert cursor == encode_cursor(order, SortKey(None, TREE_ID))


def test_cursor_is_opaque_url_safe_text() -> None:
    cursor = encode_cursor(TreeOrder.WON_LOTTERY_DATE_DESC, SortKey(DATES[0], TREE_ID))
    assert TREE_ID.hex not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_sort_key_of_a_tree() -> None:
    tree = TreeState(TREE_ID, 12, 3, 3, State.GROWING, True, None, DATES[0], "en")
    assert sort_key(tree) == SortKey(DATES[0], TREE_ID)


VALID_HEX = TREE_ID.hex
MALFORMED = {
    "garbage": "!!! not a cursor !!!",
    "empty": "",
    "too long": _payload(1, "ia", VALID_HEX, "x" * 1000),
    "deeply nested": _b64(b"[" * 100_000 + b"]" * 100_000),
    "bad base64": "a",
    "non-ascii": "çursor",
    "not json": _b64(b"hello world"),
    "not utf-8": _b64(b"\xff\xfe\xfd\xfc"),
    "json object": _b64(b'{"v": 1, "o": "ia"}'),
    "json string": _b64(b'"text"'),
    "too short": _payload(1, "ia", VALID_HEX),
    "extra item": _payload(1, "ia", VALID_HEX, None, "extra"),
    "wrong version": _payload(2, "ia", VALID_HEX, None),
    "version as text": _payload("1", "ia", VALID_HEX, None),
    "unknown order": _payload(1, "zz", VALID_HEX, None),
    "order not a string": _payload(1, ["ia"], VALID_HEX, None),
    "bad uuid": _payload(1, "ia", "not-a-uuid", None),
    "short uuid": _payload(1, "ia", VALID_HEX[:-2], None),
    "uuid as number": _payload(1, "ia", 123, None),
    "uuid as list": _payload(1, "ia", [VALID_HEX], None),
    "null uuid": _payload(1, "ia", None, None),
    "naive date": _payload(1, "wa", VALID_HEX, "2023-03-01T12:00:00"),
    "bad date": _payload(1, "wa", VALID_HEX, "yesterday"),
    "date as number": _payload(1, "wa", VALID_HEX, 1677672000),
}


@pytest.mark.parametrize("cursor", list(MALFORMED.values()), ids=list(MALFORMED))
def test_malformed_cursor_is_invalid_input(cursor: str) -> None:
    order = TreeOrder.WON_LOTTERY_DATE_ASC
    with pytest.raises(InvalidInput) as info:
        decode_cursor(cursor, order)
    assert info.value.argument == "after"
    assert info.value.message == "`after` is not a valid cursor"


def test_argument_name_is_reported() -> None:
    with pytest.raises(InvalidInput) as info:
        decode_cursor("garbage!", TreeOrder.MESSAGE_TREE_ID_ASC, argument="before")
    assert info.value.argument == "before"
    assert "`before`" in info.value.message


@pytest.mark.parametrize("made_for", list(TreeOrder), ids=lambda o: o.name)
@pytest.mark.parametrize("used_for", list(TreeOrder), ids=lambda o: o.name)
def test_cursor_for_another_order_is_refused(made_for: TreeOrder, used_for: TreeOrder) -> None:
    cursor = encode_cursor(made_for, SortKey(DATES[0], TREE_ID))
    if made_for is used_for:
        assert decode_cursor(cursor, used_for).message_tree_id == TREE_ID
        return
    with pytest.raises(InvalidInput) as info:
        decode_cursor(cursor, used_for)
    assert info.value.argument == "after"
    assert made_for.name in info.value.message
    assert f"not {used_for.name}" in info.value.message


@pytest.mark.parametrize("first", [1, 2, 50, 99, 100])
def test_check_first_accepts_the_range(first: int) -> None:
    assert check_first(first, 100) == first


@pytest.mark.parametrize("first", [0, -1, 101, 10_000])
def test_check_first_refuses_out_of_range(first: int) -> None:
    with pytest.raises(InvalidInput) as info:
        check_first(first, 100)
    assert info.value.argument == "first"
    assert info.value.message == f"`first` must be between 1 and 100, got {first}"


def test_check_first_names_its_argument() -> None:
    assert check_first(7, 7, argument="last") == 7
    with pytest.raises(InvalidInput) as info:
        check_first(8, 7, argument="last")
    assert info.value.argument == "last"
    assert info.value.message == "`last` must be between 1 and 7, got 8"
