"""DataLoaders: one statement per batch of keys, per request."""

from __future__ import annotations

from uuid import UUID

from strawberry.dataloader import DataLoader

from db import log, messages, trees
from db.session import RequestConnection
from domain.outcomes import StateTransition
from domain.values import Message, TreeState


class Loaders:
    """The request's DataLoaders; each batch runs one statement on the request connection."""

    def __init__(self, db: RequestConnection) -> None:
        self._db = db
        self.tree = DataLoader[UUID, TreeState | None](self._load_trees)
        self.root_message = DataLoader[UUID, Message | None](self._load_root_messages)
        self.message_count = DataLoader[UUID, int](self._load_message_counts)
        self._transitions: dict[int, DataLoader[UUID, list[StateTransition]]] = {}

    def transitions(self, first: int) -> DataLoader[UUID, list[StateTransition]]:
        """A loader of each tree's newest `first` log rows (one loader per `first`)."""
        if first not in self._transitions:

            async def load(ids: list[UUID]) -> list[list[StateTransition]]:
                async with self._db.use() as conn:
                    found = await log.newest_for_trees(conn, ids, first)
                return [found[i] for i in ids]

            self._transitions[first] = DataLoader(load)
        return self._transitions[first]

    async def _load_trees(self, ids: list[UUID]) -> list[TreeState | None]:
        async with self._db.use() as conn:
            found = await trees.get_trees(conn, ids)
        return [found.get(i) for i in ids]

    async def _load_root_messages(self, ids: list[UUID]) -> list[Message | None]:
        async with self._db.use() as conn:
            found = await messages.root_messages(conn, ids)
        return [found.get(i) for i in ids]

    async def _load_message_counts(self, ids: list[UUID]) -> list[int]:
        async with self._db.use() as conn:
            counts = await messages.message_counts(conn, ids)
        return [counts[i] for i in ids]
