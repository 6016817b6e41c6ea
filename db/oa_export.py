"""Exporting trees in Open-Assistant's tree export format, streaming, by pages of trees.

Trees are read in id order, `page` at a time (keyset pagination: each page is one query for the
trees' states and one for their messages), turned into export documents
(`domain.oa_format.export_tree`) and written one per line, gzipped when the file name ends in
`.gz`. The file appears under its name only once it is complete (written beside it, then
renamed), so a failed export leaves no partial file behind.
"""

from __future__ import annotations

import gzip
import os
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import orjson
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import tables
from db.messages import MESSAGE_TEXT
from domain.oa_format import OAMessage, export_tree

DEFAULT_PAGE = 500


async def export_documents(
    engine: AsyncEngine,
    *,
    states: Sequence[str] = (),
    langs: Sequence[str] = (),
    page: int = DEFAULT_PAGE,
) -> AsyncIterator[dict[str, Any]]:
    """The export documents of the trees in `states` and `langs` (all when empty), by id."""
    mts = tables.message_tree_state
    after: UUID | None = None
    while True:
        query = select(mts.c.message_tree_id, mts.c.state, mts.c.origin)
        if states:
            query = query.where(mts.c.state.in_(list(states)))
        if langs:
            query = query.where(mts.c.lang.in_(list(langs)))
        if after is not None:
            query = query.where(mts.c.message_tree_id > after)
        query = query.order_by(mts.c.message_tree_id).limit(page)
        async with engine.connect() as conn:
            trees = (await conn.execute(query)).all()
            if not trees:
                return
            messages = await _messages(conn, [t.message_tree_id for t in trees])
        for tree in trees:
            yield export_tree(
                tree.message_tree_id,
                tree.state,
                tree.origin,
                messages.get(tree.message_tree_id, ()),
            )
        after = trees[-1].message_tree_id


async def _messages(conn: AsyncConnection, tree_ids: list[UUID]) -> dict[UUID, list[OAMessage]]:
    m = tables.message
    rows = await conn.execute(
        select(
            m.c.message_tree_id,
            m.c.id,
            m.c.parent_id,
            m.c.user_id,
            m.c.created_date,
            MESSAGE_TEXT.label("text"),
            m.c.role,
            m.c.lang,
            m.c.review_count,
            m.c.review_result,
            m.c.deleted,
            m.c.rank,
            m.c.synthetic,
            m.c.model_name,
            m.c.emojis,
            m.c.depth,
            m.c.children_count,
        ).where(m.c.message_tree_id.in_(tree_ids))
    )
    found: dict[UUID, list[OAMessage]] = {}
    for row in rows:
        found.setdefault(row.message_tree_id, []).append(
            OAMessage(
                id=row.id,
                parent_id=row.parent_id,
                user_id=row.user_id,
                created_date=row.created_date,
                text=row.text or "",
                role=row.role,
                lang=row.lang,
                review_count=row.review_count,
                review_result=row.review_result,
                deleted=row.deleted,
                rank=row.rank,
                synthetic=row.synthetic,
                model_name=row.model_name,
                emojis=row.emojis,
                depth=row.depth,
                children_count=row.children_count,
            )
        )
    return found


async def export_file(
    engine: AsyncEngine,
    path: Path | None,
    *,
    states: Sequence[str] = (),
    langs: Sequence[str] = (),
    progress: Callable[[int], None] | None = None,
    stdout: BinaryIO | None = None,
) -> int:
    """Write the trees to `path` (or to `stdout` when `path` is None); returns how many."""
    if path is None:
        assert stdout is not None
        return await _write(engine, stdout, states, langs, progress)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("wb") as raw:
            if path.name.endswith(".gz"):
                with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as zipped:
                    count = await _write(engine, zipped, states, langs, progress)  # type: ignore[arg-type]
            else:
                count = await _write(engine, raw, states, langs, progress)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


async def _write(
    engine: AsyncEngine,
    out: BinaryIO,
    states: Sequence[str],
    langs: Sequence[str],
    progress: Callable[[int], None] | None,
) -> int:
    count = 0
    async for document in export_documents(engine, states=states, langs=langs):
        out.write(orjson.dumps(document) + b"\n")
        count += 1
        if progress is not None and count % DEFAULT_PAGE == 0:
            progress(count)
    if progress is not None:
        progress(count)
    return count
