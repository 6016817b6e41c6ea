"""The shape of a message tree, computed from its rows: no query per level, ever.

A tree's messages are read in one statement (for a whole page of trees at once) and every
tree-wide answer is computed here, in memory: the depth-first order, a message's descendants
and its conversation, the longest conversation, the message with the most children. Siblings
are ordered as Open-Assistant ranks them: by `rank` (0 is best, unranked last), then by
creation date, then by id.

Which rows take part follows Open-Assistant: deleted messages are left out unless asked for,
and `include_spam=False` keeps only accepted messages (`review_result` true). A message whose
parent is left out is unreachable from the root and is left out with it (Open-Assistant marks
the descendants of a deleted message deleted too). The longest conversation and the message
with the most children look at accepted, non-deleted messages only, as Open-Assistant's do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from uuid import UUID

from domain.values import Message

_LAST = datetime.max


def sibling_key(message: Message) -> tuple[int, int, datetime, UUID]:
    """Siblings' order: by rank (unranked last), then creation date, then id."""
    created = message.created_date
    created = _LAST if created is None else created.replace(tzinfo=None)
    rank = message.rank
    return (rank is None, 0 if rank is None else rank, created, message.id)


def _age_key(message: Message) -> tuple[datetime, UUID]:
    created = message.created_date
    return (_LAST if created is None else created.replace(tzinfo=None), message.id)


def visible(message: Message, *, include_deleted: bool, include_spam: bool) -> bool:
    """Whether a message takes part, as Open-Assistant's `deleted` and `include_spam` say."""
    if message.deleted and not include_deleted:
        return False
    return include_spam or message.review_result is True


def ordered_children(children: Iterable[Message]) -> list[Message]:
    return sorted(children, key=sibling_key)


@dataclass(frozen=True)
class MessageTree:
    """Every message of one tree (deleted and unreviewed included), indexed for the questions."""

    tree_id: UUID
    messages: tuple[Message, ...]

    @cached_property
    def by_id(self) -> dict[UUID, Message]:
        return {m.id: m for m in self.messages}

    @cached_property
    def _children(self) -> dict[UUID, list[Message]]:
        children: dict[UUID, list[Message]] = {}
        for m in self.messages:
            if m.parent_id is not None:
                children.setdefault(m.parent_id, []).append(m)
        for siblings in children.values():
            siblings.sort(key=sibling_key)
        return children

    def children(self, message_id: UUID) -> list[Message]:
        return self._children.get(message_id, [])

    def depth_first(
        self, start: UUID, keep: Callable[[Message], bool] = lambda m: True
    ) -> list[Message]:
        """`start` and the messages below it that `keep` accepts, depth-first, in sibling
        order; a message `keep` refuses hides the messages below it."""
        first = self.by_id.get(start)
        if first is None or not keep(first):
            return []
        found: list[Message] = []
        stack = [first]
        while stack:
            m = stack.pop()
            found.append(m)
            stack.extend(c for c in reversed(self.children(m.id)) if keep(c))
        return found

    def messages_in_order(self, *, include_deleted: bool, include_spam: bool) -> list[Message]:
        """The whole tree, root first, depth-first (`MessageTreeState.messages`)."""
        return self.depth_first(
            self.tree_id,
            lambda m: visible(m, include_deleted=include_deleted, include_spam=include_spam),
        )

    def conversation(self, message_id: UUID) -> list[Message]:
        """From the root down to the message (the message last); empty if it is not here."""
        path: list[Message] = []
        seen: set[UUID] = set()
        current = self.by_id.get(message_id)
        while current is not None and current.id not in seen:  # a cycle would be bad data
            seen.add(current.id)
            path.append(current)
            current = None if current.parent_id is None else self.by_id.get(current.parent_id)
        path.reverse()
        return path

    def _accepted(self) -> list[Message]:
        """The messages Open-Assistant's tree questions look at: accepted and not deleted."""
        return self.depth_first(
            self.tree_id, lambda m: visible(m, include_deleted=False, include_spam=False)
        )

    def longest_conversation(self) -> list[Message]:
        """The longest path from the root down through accepted, non-deleted messages, root
        first; of equally long ones, the one that ends in the earliest leaf."""
        live = self._accepted()
        if not live:
            return []
        depth: dict[UUID, int] = {}
        for m in live:  # depth-first: a parent comes before its children
            depth[m.id] = 0 if m.parent_id is None else depth.get(m.parent_id, -1) + 1
        deepest = max(depth.values())
        leaf = min((m for m in live if depth[m.id] == deepest), key=_age_key)
        return self.conversation(leaf.id)

    def message_with_most_children(self) -> Message | None:
        """Of the accepted, non-deleted messages, the one with the most such children (ties:
        the earliest); None if the root itself is not accepted."""
        live = self._accepted()
        kept = {m.id for m in live}
        best: Message | None = None
        best_count = -1
        for m in sorted(live, key=_age_key):
            count = sum(1 for c in self.children(m.id) if c.id in kept)
            if count > best_count:
                best, best_count = m, count
        return best


def tree_of(tree_id: UUID, rows: Sequence[Message]) -> MessageTree:
    return MessageTree(tree_id, tuple(rows))
