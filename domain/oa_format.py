"""Open-Assistant's tree export format: reading a tree into the rows Treegate stores, and writing
stored rows back as a tree.

A tree (one JSON object per line in `*.trees.jsonl[.gz]`) has `message_tree_id`, `tree_state`,
`origin` and `prompt`, the root message, whose `replies` nest the rest. A message has
`message_id`, `text` and `role`, and may have `parent_id`, `user_id`, `created_date`, `lang`,
`review_count`, `review_result`, `deleted`, `rank`, `synthetic`, `model_name`, `emojis`,
`labels`, `events` and `detoxify`. Any of the optional keys may be missing or null: the backend's
exporter leaves out null values, oasst2's files spell them out, and older exports lack
`created_date`, `user_id` and `events` altogether.

Treegate stores the message fields above up to `emojis` (`labels`, `events` and `detoxify` are
accepted and not kept), the tree's state, origin and language, and derives each message's depth
and children count. `export_tree` writes what is stored in the same shape (keys in the published
order, null values left out as the backend's exporter does, siblings by rank), so that importing
a file and exporting it again gives back every field Treegate keeps.

Pure: no I/O here (`db.oa_import`, `db.oa_export` read and write).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NamedTuple
from uuid import UUID

from domain.states import GREW_STATES, State, is_active

ROLES = ("prompter", "assistant")
DEFAULT_LANG = "en"
NULL_STATE = State.BACKLOG_RANKING
"""The state of a tree whose `tree_state` is null: Open-Assistant's own importer puts every
imported tree in `backlog_ranking`."""
MAX_LANG = 32
MAX_MODEL_NAME = 1024
MAX_ORIGIN = 1024
MAX_MESSAGES = 100_000
"""More messages than any Open-Assistant tree holds (the largest have a few hundred)."""


class InvalidTree(ValueError):
    """A line that is not a valid tree of the export format; the message says what is wrong."""


class OAMessage(NamedTuple):
    """A message as Treegate stores it (`message` table), from an export or for one."""

    id: UUID
    parent_id: UUID | None
    user_id: UUID | None
    created_date: datetime | None
    text: str
    role: str
    lang: str
    review_count: int
    review_result: bool | None
    deleted: bool
    rank: int | None
    synthetic: bool
    model_name: str | None
    emojis: dict[str, int] | None
    depth: int
    children_count: int


@dataclass(frozen=True, slots=True)
class OATree:
    """A tree as Treegate stores it: its messages (root first, parents before children) and the
    fields of its `message_tree_state` row."""

    id: UUID
    state: State
    origin: str | None
    lang: str
    messages: list[OAMessage]

    @property
    def active(self) -> bool:
        return is_active(self.state)

    @property
    def users(self) -> set[UUID]:
        return {m.user_id for m in self.messages if m.user_id is not None}

    @property
    def grew(self) -> bool:
        """Whether the tree won the prompt lottery: a state past it, or any reply."""
        return self.state in GREW_STATES or len(self.messages) > 1

    @property
    def won_prompt_lottery_date(self) -> datetime | None:
        """When the tree won the lottery, as far as the file tells: before its first reply was
        written (or when its prompt was, if it has none yet)."""
        if not self.grew:
            return None
        dates = [m.created_date for m in self.messages[1:] if m.created_date is not None]
        return min(dates) if dates else self.messages[0].created_date


# --- reading ----------------------------------------------------------------------------------


def parse_tree(document: Any, *, origin: str | None = None) -> OATree:
    """The tree a decoded JSON line describes; raises InvalidTree saying what is wrong.

    `origin` (the `--origin` option) replaces the tree's own.
    """
    if not isinstance(document, dict):
        raise InvalidTree(f"a tree is a JSON object, not {_kind(document)}")
    tree_id = _uuid(document, "message_tree_id", "the tree", required=True)
    assert tree_id is not None
    state_value = _optional(document, "tree_state", str, "the tree")
    try:
        state = NULL_STATE if state_value is None else State(state_value)
    except ValueError:
        raise InvalidTree(f"`tree_state` {state_value!r} is not a message tree state") from None
    if origin is None:
        origin = _optional(document, "origin", str, "the tree")
    if origin is not None:
        _check_text(origin, "`origin` of the tree", MAX_ORIGIN)
    prompt = document.get("prompt")
    if not isinstance(prompt, dict):
        raise InvalidTree(f"`prompt` must be the root message (an object), not {_kind(prompt)}")
    messages = _messages(prompt)
    root = messages[0]
    if root.id != tree_id:
        raise InvalidTree(
            f"`message_tree_id` {tree_id} differs from the root's `message_id` {root.id}"
        )
    if root.role != "prompter":
        raise InvalidTree(f"the root message's role is {root.role!r}; a tree starts with a prompt")
    if root.parent_id is not None:
        raise InvalidTree("the root message has a `parent_id`")
    return OATree(tree_id, state, origin, root.lang, messages)


def _messages(prompt: dict[str, Any]) -> list[OAMessage]:
    """The tree's messages, parents before children (iterative: no recursion limit)."""
    messages: list[OAMessage] = []
    seen: set[UUID] = set()
    # (node, parent id, parent lang, depth)
    pending: list[tuple[Any, UUID | None, str, int]] = [(prompt, None, DEFAULT_LANG, 0)]
    while pending:
        node, parent, parent_lang, depth = pending.pop()
        if not isinstance(node, dict):
            raise InvalidTree(f"a reply must be a message (an object), not {_kind(node)}")
        message = _message(node, parent, parent_lang, depth)
        if message.id in seen:
            raise InvalidTree(f"message {message.id} appears twice in the tree")
        seen.add(message.id)
        replies = node.get("replies")
        if replies is None:
            replies = []
        elif not isinstance(replies, list):
            raise InvalidTree(f"`replies` of message {message.id} must be a list")
        messages.append(message._replace(children_count=len(replies)))
        if len(messages) + len(pending) + len(replies) > MAX_MESSAGES:
            raise InvalidTree(f"the tree has more than {MAX_MESSAGES} messages")
        # Reversed, so that the first reply is taken next (depth-first, in file order).
        pending.extend((r, message.id, message.lang, depth + 1) for r in reversed(replies))
    return messages


def _message(node: dict[str, Any], parent: UUID | None, parent_lang: str, depth: int) -> OAMessage:
    message_id = _uuid(node, "message_id", "a message", required=True)
    assert message_id is not None
    where = f"message {message_id}"
    text = node.get("text")
    if not isinstance(text, str):
        raise InvalidTree(f"`text` of {where} must be a string, not {_kind(text)}")
    _check_text(text, f"`text` of {where}")
    role = node.get("role")
    if role not in ROLES:
        raise InvalidTree(f"`role` of {where} must be prompter or assistant, not {role!r}")
    parent_id = _uuid(node, "parent_id", where)
    if parent_id is not None and parent_id != parent:
        raise InvalidTree(f"`parent_id` of {where} is {parent_id}, but it is a reply to {parent}")
    lang = _optional(node, "lang", str, where)
    if lang is not None:
        _check_text(lang, f"`lang` of {where}", MAX_LANG)
    model_name = _optional(node, "model_name", str, where)
    if model_name is not None:
        _check_text(model_name, f"`model_name` of {where}", MAX_MODEL_NAME)
    review_count = _optional(node, "review_count", int, where)
    if review_count is not None and review_count < 0:
        raise InvalidTree(f"`review_count` of {where} is negative")
    return OAMessage(
        id=message_id,
        parent_id=parent,
        user_id=_uuid(node, "user_id", where),
        created_date=_date(node, where),
        text=text,
        role=role,
        lang=lang or parent_lang,
        review_count=review_count or 0,
        review_result=_optional(node, "review_result", bool, where),
        deleted=bool(_optional(node, "deleted", bool, where)),
        rank=_optional(node, "rank", int, where),
        synthetic=bool(_optional(node, "synthetic", bool, where)),
        model_name=model_name,
        emojis=_emojis(node, where),
        depth=depth,
        children_count=0,
    )


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )


def _optional(node: Mapping[str, Any], key: str, kind: type, where: str) -> Any:
    value = node.get(key)
    if value is None:
        return None
    # JSON's true and false are not numbers here, even though Python's bool is an int.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise InvalidTree(f"`{key}` of {where} must be {kind.__name__} or null, not {value!r}")
    return value


def _uuid(node: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> UUID | None:
    value = node.get(key)
    if value is None:
        if required:
            raise InvalidTree(f"{where} has no `{key}`")
        return None
    if not isinstance(value, str):
        raise InvalidTree(f"`{key}` of {where} must be a UUID string, not {_kind(value)}")
    try:
        return UUID(value)
    except ValueError:
        raise InvalidTree(f"`{key}` of {where} is not a UUID: {value[:60]!r}") from None


def _date(node: Mapping[str, Any], where: str) -> datetime | None:
    value = _optional(node, "created_date", str, where)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidTree(f"`created_date` of {where} is not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)  # the exporter writes UTC
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidTree(f"`created_date` of {where} is out of range: {value!r}") from None
    return parsed


def _emojis(node: Mapping[str, Any], where: str) -> dict[str, int] | None:
    value = _optional(node, "emojis", dict, where)
    if value is None:
        return None
    for name, count in value.items():
        if isinstance(count, bool) or not isinstance(count, int):
            raise InvalidTree(f"`emojis` of {where}: the count of {name!r} is not an integer")
        _check_text(name, f"an emoji name of {where}")
    return dict(value)


def _check_text(value: str, what: str, limit: int | None = None) -> None:
    if "\x00" in value:
        raise InvalidTree(f"{what} contains a NUL character (U+0000), which cannot be stored")
    if limit is not None and len(value) > limit:
        raise InvalidTree(f"{what} is longer than {limit} characters")


# --- writing ----------------------------------------------------------------------------------


def export_tree(
    tree_id: UUID, state: str, origin: str | None, messages: Iterable[OAMessage]
) -> dict[str, Any]:
    """The tree as a JSON-ready object in the export format (keys in the published order, null
    values left out, `"replies": []` on leaves, siblings by rank with unranked ones last)."""
    nodes: dict[UUID, dict[str, Any]] = {}
    children: dict[UUID | None, list[tuple[OAMessage, dict[str, Any]]]] = {}
    for message in messages:
        node = _node(message)
        nodes[message.id] = node
        children.setdefault(message.parent_id, []).append((message, node))
    for parent_id, replies in children.items():
        parent = nodes.get(parent_id) if parent_id is not None else None
        if parent is None:
            continue
        replies.sort(key=_sibling_order)
        parent["replies"] = [node for _, node in replies]
    root = nodes.get(tree_id)
    document: dict[str, Any] = {"message_tree_id": str(tree_id), "tree_state": state}
    if root is not None:
        document["prompt"] = root
    if origin is not None:
        document["origin"] = origin
    return document


def _sibling_order(item: tuple[OAMessage, dict[str, Any]]) -> tuple[bool, float, datetime, str]:
    message = item[0]
    rank = math.inf if message.rank is None else message.rank
    created = message.created_date or datetime.min.replace(tzinfo=UTC)
    return (message.rank is None, rank, created, str(message.id))


def _node(message: OAMessage) -> dict[str, Any]:
    values: Sequence[tuple[str, Any]] = (
        ("message_id", str(message.id)),
        ("parent_id", None if message.parent_id is None else str(message.parent_id)),
        ("user_id", None if message.user_id is None else str(message.user_id)),
        ("created_date", None if message.created_date is None else _iso(message.created_date)),
        ("text", message.text),
        ("role", message.role),
        ("lang", message.lang),
        ("review_count", message.review_count),
        ("review_result", message.review_result),
        ("deleted", message.deleted),
        ("rank", message.rank),
        ("synthetic", message.synthetic),
        ("model_name", message.model_name),
        ("emojis", message.emojis),
    )
    node = {key: value for key, value in values if value is not None}
    node["replies"] = []
    return node


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat()
