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
from domain.outcomes import StateTransition
from domain.values import Message, TreeState

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

    def __init__(self, db: RequestConnection) -> None:
        self._db = db
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
