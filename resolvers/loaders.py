"""DataLoaders: one statement per batch of keys, per request."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from functools import cached_property
from typing import TypeVar
from uuid import UUID

from strawberry.dataloader import DataLoader

from db import log, messages
from db.session import RequestConnection
from domain.errors import TreeTooLarge
from domain.message_trees import MessageTree, ordered_children
from domain.outcomes import StateTransition
from domain.values import Message, TreeState

DEFAULT_MAX_TREE_MESSAGES = 1_000
"""The most messages a request reads of one tree (`TREEGATE_MAX_TREE_MESSAGES`)."""

K = TypeVar("K")
V = TypeVar("V")


class SharedLoader(DataLoader[K, V]):
    """A DataLoader whose futures outlive the cancellation of one of their awaiters.

    The loader hands every field asking for the same key the same future. When one field's
    task is cancelled (graphql-core aborts the siblings of a field whose error nulled their
    parent), awaiting that future directly would cancel it for every other field too, and
    they would fail with a CancelledError instead of their value: each awaiter gets a shield.
    """

    def load(self, key: K) -> Awaitable[V]:
        return asyncio.shield(super().load(key))


class Loaders:
    """The request's DataLoaders; each batch runs one statement on the request connection."""

    def __init__(
        self, db: RequestConnection, max_tree_messages: int = DEFAULT_MAX_TREE_MESSAGES
    ) -> None:
        self._db = db
        self._max_tree_messages = max_tree_messages
        self._transitions: dict[int, DataLoader[UUID, list[StateTransition]]] = {}

    # Made on first use: most requests need one loader or none (a compiled read needs none).
    @cached_property
    def tree(self) -> DataLoader[UUID, TreeState | None]:
        return SharedLoader(self._load_trees)

    @cached_property
    def root_message(self) -> DataLoader[UUID, Message | None]:
        return SharedLoader(self._load_root_messages)

    @cached_property
    def message_count(self) -> DataLoader[UUID, int]:
        return SharedLoader(self._load_message_counts)

    @cached_property
    def message(self) -> DataLoader[UUID, Message | None]:
        return SharedLoader(self._load_messages)

    @cached_property
    def children(self) -> DataLoader[UUID, list[Message]]:
        """Every child of a message (deleted ones too), in sibling order."""
        return SharedLoader(self._load_children)

    @cached_property
    def children_count(self) -> DataLoader[UUID, int]:
        return SharedLoader(self._load_children_counts)

    @cached_property
    def emojis(self) -> DataLoader[UUID, dict[str, int]]:
        return SharedLoader(self._load_emojis)

    @cached_property
    def message_tree(self) -> DataLoader[UUID, MessageTree]:
        """Every message of a tree, by tree id: one statement for a batch of trees; a tree of
        more than the most a request reads fails with `TreeTooLarge`."""
        return SharedLoader(self._load_message_trees)

    def transitions(self, first: int) -> DataLoader[UUID, list[StateTransition]]:
        """A loader of each tree's newest `first` log rows (one loader per `first`)."""
        if first not in self._transitions:

            async def load(ids: list[UUID]) -> list[list[StateTransition]]:
                async with self._db.use() as conn:
                    found = await log.newest_for_trees(conn, ids, first)
                return [found[i] for i in ids]

            self._transitions[first] = SharedLoader(load)
        return self._transitions[first]

    async def _load_trees(self, ids: list[UUID]) -> list[TreeState | None]:
        async with self._db.reads() as reads:
            found = await reads.get_trees(ids)
        return [found.get(i) for i in ids]

    async def _load_root_messages(self, ids: list[UUID]) -> list[Message | None]:
        async with self._db.reads() as reads:
            found = await reads.root_messages(ids)
        return [found.get(i) for i in ids]

    async def _load_message_counts(self, ids: list[UUID]) -> list[int]:
        async with self._db.use() as conn:
            counts = await messages.message_counts(conn, ids)
        return [counts[i] for i in ids]

    async def _load_messages(self, ids: list[UUID]) -> list[Message | None]:
        async with self._db.reads() as reads:
            rows = await reads.rows(messages.messages_query(ids, pg=reads.pg))
        found = {m.id: m for m in map(messages.to_message, rows)}
        return [found.get(i) for i in ids]

    async def _load_children(self, ids: list[UUID]) -> list[list[Message]]:
        async with self._db.reads() as reads:
            rows = await reads.rows(messages.children_query(ids, pg=reads.pg))
        children: dict[UUID, list[Message]] = {}
        for m in map(messages.to_message, rows):
            if m.parent_id is not None:
                children.setdefault(m.parent_id, []).append(m)
        return [ordered_children(children.get(i, ())) for i in ids]

    async def _load_children_counts(self, ids: list[UUID]) -> list[int]:
        async with self._db.reads() as reads:
            rows = await reads.rows(messages.children_counts_query(ids, pg=reads.pg))
        counts = {parent: int(n) for parent, n in rows}
        return [counts.get(i, 0) for i in ids]

    async def _load_emojis(self, ids: list[UUID]) -> list[dict[str, int]]:
        async with self._db.reads() as reads:
            rows = await reads.rows(messages.emojis_query(ids, pg=reads.pg))
        found = {i: messages.to_emojis(value) for i, value in rows}
        return [found.get(i, {}) for i in ids]

    async def _load_message_trees(self, ids: list[UUID]) -> list[MessageTree | BaseException]:
        most = self._max_tree_messages
        # One row more than allowed tells a tree that is too large from one that is full.
        async with self._db.reads() as reads:
            query = messages.tree_messages_query(ids, most + 1, pg=reads.pg)
            rows = await reads.rows(query)
        by_tree: dict[UUID, list[Message]] = {}
        for m in map(messages.to_message, rows):
            by_tree.setdefault(m.message_tree_id, []).append(m)
        return [
            TreeTooLarge(i, most)
            if len(by_tree.get(i, ())) > most
            else MessageTree(i, tuple(by_tree.get(i, ())))
            for i in ids
        ]
