"""Importing Open-Assistant tree exports (`*.trees.jsonl`, gzipped or not), streaming, in batches.

The file is read line by line and each line parsed and checked (`domain.oa_format.parse_tree`)
before anything of its batch is written; a batch of `batch_size` trees is written in one
transaction: its users, its messages, then its trees' states. Memory holds one batch, whatever
the file's size.

- A tree already in the database is skipped whole (re-importing a file changes nothing), and so
  is a tree that appears twice in the file.
- A line that is not valid JSON, or not a valid tree, or a tree whose message ids another tree
  already uses, stops the import (`ImportFailed`, with the file name and line number): every batch
  before it is committed, nothing of its own batch is written. With `skip_invalid` such lines
  are reported through `on_invalid` and left out, and the import goes on.
- The database must be able to take the rows: an attached Open-Assistant database, whose
  `message` and `user` tables need more (an API client for each row), is refused before
  anything is read (`ImportRefused`).
"""

from __future__ import annotations

import gzip
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO
from uuid import UUID

import orjson
from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db import tables
from db.engine import write_transaction
from db.messages import PAYLOAD_TYPE, message_payload
from db.notify import announce_write
from db.trees import TREE_DEFAULTS
from db.types import dialect_insert
from domain.oa_format import InvalidTree, OATree, parse_tree

DEFAULT_BATCH = 500
IMPORT_AUTH_METHOD = "oasst_export"
"""`user.auth_method` of the users an import creates (their `username` is their id)."""
_IN_CHUNK = 5_000


class ImportFailed(Exception):
    """A line that stops the import: `path:line: reason`."""

    def __init__(self, path: str, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


class ImportRefused(Exception):
    """The database cannot take imported rows; nothing was read or written."""


@dataclass(slots=True)
class ImportReport:
    trees: int = 0
    """Trees written."""
    messages: int = 0
    users: int = 0
    """Users written: those the file names that the database did not hold."""
    skipped: int = 0
    """Trees already in the database, or twice in the file."""
    invalid: int = 0
    """Lines left out (`skip_invalid`)."""
    lines: int = 0
    invalid_lines: list[int] = field(default_factory=list)


@dataclass(slots=True)
class _Pending:
    line: int
    tree: OATree


Progress = Callable[[ImportReport, int], None]
"""Called after each batch with the report so far and the bytes of the file read."""
Invalid = Callable[[ImportFailed], None]


def open_export(path: Path) -> tuple[gzip.GzipFile | BinaryIO, BinaryIO]:
    """The file's lines (gunzipped if it is gzip, by its magic bytes) and the raw file, whose
    position tells how far the reading is."""
    raw: BinaryIO = path.open("rb")
    if raw.read(2) == b"\x1f\x8b":
        raw.seek(0)
        return gzip.GzipFile(fileobj=raw, mode="rb"), raw
    raw.seek(0)
    return raw, raw


def numbered_lines(stream: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    yield from enumerate(stream, start=1)


async def import_file(
    engine: AsyncEngine,
    path: Path,
    *,
    origin: str | None = None,
    skip_invalid: bool = False,
    batch_size: int = DEFAULT_BATCH,
    progress: Progress | None = None,
    on_invalid: Invalid | None = None,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> ImportReport:
    """Import the trees of `path` (see the module's docstring)."""
    await check_importable(engine)
    name = str(path)
    report = ImportReport()
    batch: list[_Pending] = []
    batch_ids: set[UUID] = set()
    stream, raw = open_export(path)

    def invalid(line: int, reason: str) -> None:
        failure = ImportFailed(name, line, reason)
        if not skip_invalid:
            raise failure
        report.invalid += 1
        report.invalid_lines.append(line)
        if on_invalid is not None:
            on_invalid(failure)

    async def flush() -> None:
        if batch:
            await _write_batch(engine, batch, report, invalid, now())
            batch.clear()
            batch_ids.clear()
        if progress is not None:
            progress(report, raw.tell())

    with stream, raw:
        try:
            for number, line in numbered_lines(stream):
                report.lines = number
                if not line.strip():
                    continue
                try:
                    document = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    invalid(number, f"not valid JSON ({exc})")
                    continue
                try:
                    tree = parse_tree(document, origin=origin)
                except InvalidTree as exc:
                    invalid(number, f"not a valid tree: {exc}")
                    continue
                if tree.id in batch_ids:
                    report.skipped += 1
                    continue
                batch_ids.add(tree.id)
                batch.append(_Pending(number, tree))
                if len(batch) >= batch_size:
                    await flush()
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise ImportFailed(name, report.lines + 1, f"the file cannot be read: {exc}") from exc
        await flush()
    return report


async def check_importable(engine: AsyncEngine) -> None:
    """Refuse a database whose `message` or `user` table needs columns an import cannot fill
    (an Open-Assistant database: its rows name the API client that sent them)."""

    def needs(connection: Any) -> dict[str, list[str]]:
        inspector = inspect(connection)
        found: dict[str, list[str]] = {}
        for table in (tables.message, tables.user, tables.message_tree_state):
            if not inspector.has_table(table.name):
                continue
            known = set(table.c.keys())
            missing = [
                c["name"]
                for c in inspector.get_columns(table.name)
                if c["name"] not in known
                and not c.get("nullable", True)
                and c.get("default") is None
                and c.get("autoincrement") is not True
            ]
            if missing:
                found[table.name] = missing
        return found

    async with engine.connect() as conn:
        missing = await conn.run_sync(needs)
    if missing:
        columns = "; ".join(f"{t}: {', '.join(c)}" for t, c in missing.items())
        raise ImportRefused(
            "this database's tables need columns an import cannot fill "
            f"({columns}): it looks like a live Open-Assistant database, where messages are "
            "created through its API. Import into Treegate's own database instead."
        )


IMPORT_ORIGIN = "import"
"""The origin of an import's write notifications (`db.notify`): no serving process's own."""


async def _write_batch(
    engine: AsyncEngine,
    batch: list[_Pending],
    report: ImportReport,
    invalid: Callable[[int, str], None],
    now: datetime,
) -> None:
    async with write_transaction(engine) as conn:
        present = await _existing(
            conn, tables.message_tree_state.c.message_tree_id, [p.tree.id for p in batch]
        )
        fresh = [p for p in batch if p.tree.id not in present]
        report.skipped += len(batch) - len(fresh)
        taken = await _existing(
            conn, tables.message.c.id, [m.id for p in fresh for m in p.tree.messages]
        )
        writable: list[_Pending] = []
        used: set[UUID] = set()
        for pending in fresh:
            ids = {m.id for m in pending.tree.messages}
            clash = ids & (taken | used)
            if clash:
                # Raises unless invalid lines are skipped: the transaction then writes nothing.
                invalid(
                    pending.line,
                    f"message {min(clash)} of tree {pending.tree.id} belongs to another tree",
                )
                continue
            used |= ids
            writable.append(pending)
        trees = [p.tree for p in writable]
        named = sorted({u for t in trees for u in t.users})
        known = await _existing(conn, tables.user.c.id, named)
        users = [u for u in named if u not in known]
        report.users += len(users)
        if users:
            await conn.execute(
                dialect_insert(conn, tables.user).on_conflict_do_nothing(),
                [_user_row(u, now) for u in users],
            )
        messages = [
            _message_row(t, m, now + timedelta(microseconds=n))
            for t in trees
            for n, m in enumerate(t.messages)
        ]
        for start in range(0, len(messages), _IN_CHUNK):
            await conn.execute(tables.message.insert(), messages[start : start + _IN_CHUNK])
        if trees:
            await conn.execute(
                tables.message_tree_state.insert(), [_tree_row(t, now) for t in trees]
            )
            await announce_write(conn, IMPORT_ORIGIN)  # serving processes clear their caches
        report.trees += len(trees)
        report.messages += len(messages)


async def _existing(conn: AsyncConnection, column: Any, ids: Sequence[UUID]) -> set[UUID]:
    found: set[UUID] = set()
    for start in range(0, len(ids), _IN_CHUNK):
        chunk = ids[start : start + _IN_CHUNK]
        found.update((await conn.scalars(select(column).where(column.in_(chunk)))).all())
    return found


def _user_row(user_id: UUID, now: datetime) -> dict[str, Any]:
    return {
        "id": user_id,
        "username": str(user_id),
        "auth_method": IMPORT_AUTH_METHOD,
        "display_name": f"user {str(user_id)[:8]}",
        "created_date": now,
        "enabled": True,
        "deleted": False,
    }


def _message_row(tree: OATree, message: Any, now: datetime) -> dict[str, Any]:
    """The row of a message; one without a `created_date` (early exports) gets the import's
    time plus its position in the tree in microseconds, so that its siblings keep their order."""
    return {
        "id": message.id,
        "parent_id": message.parent_id,
        "message_tree_id": tree.id,
        "user_id": message.user_id,
        "role": message.role,
        "created_date": message.created_date or now,
        "payload_type": PAYLOAD_TYPE,
        "payload": message_payload(message.text),
        "lang": message.lang,
        "depth": message.depth,
        "children_count": message.children_count,
        "deleted": message.deleted,
        "review_count": message.review_count,
        "review_result": message.review_result,
        "ranking_count": 0,
        "rank": message.rank,
        "synthetic": message.synthetic,
        "edited": False,
        "model_name": message.model_name,
        "emojis": message.emojis,
    }


def _tree_row(tree: OATree, now: datetime) -> dict[str, Any]:
    return {
        "message_tree_id": tree.id,
        "goal_tree_size": TREE_DEFAULTS.goal_tree_size,
        "max_depth": TREE_DEFAULTS.max_depth,
        "max_children_count": TREE_DEFAULTS.max_children_count,
        "state": tree.state.value,
        "active": tree.active,
        "origin": tree.origin,
        # A tree that grew won the lottery; when, the file may not tell (no dates): at import.
        "won_prompt_lottery_date": tree.won_prompt_lottery_date or (now if tree.grew else None),
        "lang": tree.lang,
    }
