"""Persisted queries: Apollo's automatic protocol, and an allow-list of registered documents.

A request may name its document by hash, `extensions.persistedQuery = {"version": 1,
"sha256Hash": ...}`, over GET or POST:

- `automatic` (the default): a hash the server knows runs its document; an unknown one is answered
  `PersistedQueryNotFound` (code PERSISTED_QUERY_NOT_FOUND), and the client sends the document once
  with its hash, which the server checks (PERSISTED_QUERY_HASH_MISMATCH) and keeps, in a bounded
  store (`TREEGATE_APQ_CACHE_SIZE`, least recently used out first). Documents sent plainly run too.
- `allowlist` (for production): only documents registered with `treegate persisted add` run, named
  by hash or sent whole (PERSISTED_QUERY_NOT_ALLOWED otherwise); nothing is learnt from requests.

Registered documents are known in both modes; they are read from the database once, then kept.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncEngine

from db import persisted
from db.engine import gate
from db.persisted import sha256

Mode = Literal["automatic", "allowlist"]
_HASH = re.compile(r"^[0-9a-f]{64}$")


class PersistedQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class PersistedQueries:
    def __init__(self, engine: AsyncEngine, mode: Mode, max_documents: int) -> None:
        self.engine = engine
        self.mode = mode
        self.max_documents = max_documents
        self._learnt: OrderedDict[str, str] = OrderedDict()
        self._registered: dict[str, str] = {}

    def register_builtin(self, documents: Iterable[str]) -> None:
        """Documents the server itself serves (the dashboard's): known in either mode."""
        for document in documents:
            self._registered[sha256(document)] = document

    async def document(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The request's payload with its `query` resolved, or PersistedQueryError."""
        extensions = payload.get("extensions")
        if not isinstance(extensions, dict):
            extensions = {}  # a malformed `extensions` is the parameter check's to refuse
        extension = extensions.get("persistedQuery")
        query = payload.get("query")
        if extension is None:
            if (
                self.mode == "allowlist"
                and isinstance(query, str)
                and await self._registered_document(sha256(query)) is None
            ):
                raise not_allowed()
            return payload
        if not isinstance(extension, dict) or extension.get("version") != 1:
            raise PersistedQueryError(
                "PERSISTED_QUERY_VERSION_NOT_SUPPORTED",
                "extensions.persistedQuery needs version 1",
            )
        digest = extension.get("sha256Hash")
        if not isinstance(digest, str) or not _HASH.match(digest):
            raise PersistedQueryError(
                "PERSISTED_QUERY_HASH_MISMATCH",
                "extensions.persistedQuery.sha256Hash must be 64 lowercase hex digits",
            )
        if isinstance(query, str):
            if sha256(query) != digest:
                raise PersistedQueryError(
                    "PERSISTED_QUERY_HASH_MISMATCH", "provided sha does not match query"
                )
            if self.mode == "allowlist":
                if await self._registered_document(digest) is None:
                    raise not_allowed()
            else:
                self._learn(digest, query)
            return payload
        known = await self._known(digest)
        if known is None:
            raise PersistedQueryError("PERSISTED_QUERY_NOT_FOUND", "PersistedQueryNotFound")
        return {**payload, "query": known}

    async def _known(self, digest: str) -> str | None:
        if self.mode == "automatic" and digest in self._learnt:
            self._learnt.move_to_end(digest)
            return self._learnt[digest]
        return await self._registered_document(digest)

    async def _registered_document(self, digest: str) -> str | None:
        if digest in self._registered:
            return self._registered[digest]
        async with gate(self.engine).admitted(), self.engine.connect() as conn:
            found = await persisted.get(conn, digest)
        if found is None:
            return None
        if len(self._registered) < 10_000:
            self._registered[digest] = found.document
        return found.document

    def _learn(self, digest: str, query: str) -> None:
        self._learnt[digest] = query
        self._learnt.move_to_end(digest)
        while len(self._learnt) > self.max_documents:
            self._learnt.popitem(last=False)


def not_allowed() -> PersistedQueryError:
    return PersistedQueryError(
        "PERSISTED_QUERY_NOT_ALLOWED",
        "this server runs registered documents only (`treegate persisted add`)",
    )
