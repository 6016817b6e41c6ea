"""Apply the Alembic migrations shipped in `db/migrations` to an engine's database."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "treegate_alembic_version"


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the database up to `revision` in one transaction."""

    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with engine.begin() as conn:
        await conn.run_sync(run)


async def current_revision(engine: AsyncEngine) -> str | None:
    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    async with engine.connect() as conn:
        return await conn.run_sync(read)


@cache
def _scripts() -> tuple[str | None, frozenset[str]]:
    """The head revision and every revision this code ships (read from disk once)."""
    scripts = ScriptDirectory.from_config(alembic_config())
    return scripts.get_current_head(), frozenset(r.revision for r in scripts.walk_revisions())


def head_revision() -> str | None:
    return _scripts()[0]


@dataclass(frozen=True, slots=True)
class SchemaStatus:
    """Where a database's schema stands against the migrations this code ships."""

    current: str | None
    """The database's revision; None if it has no Treegate tables."""
    required: str | None
    known: bool
    """Whether `current` is one of this code's revisions (else a newer Treegate migrated it)."""

    @property
    def ready(self) -> bool:
        return self.current == self.required

    @property
    def reason(self) -> str:
        if self.ready:
            return "ready"
        if self.current is None:
            return "not_migrated"
        return "older_schema" if self.known else "newer_schema"

    @property
    def problem(self) -> str | None:
        """What is wrong and what to do, to follow "the database": None when it is ready."""
        if self.ready:
            return None
        if self.current is None:
            return "has no Treegate tables yet: run `treegate migrate`"
        if self.known:
            return (
                f"is at schema revision {self.current} and this Treegate needs "
                f"{self.required}: run `treegate migrate`"
            )
        return (
            f"is at schema revision {self.current}, which this Treegate does not know (a newer "
            "Treegate migrated it): run that version"
        )


async def schema_status(engine: AsyncEngine | AsyncConnection) -> SchemaStatus:
    """The database's revision against this code's head (one short read)."""

    def read(connection: Connection) -> str | None:
        context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
        return context.get_current_revision()

    if isinstance(engine, AsyncConnection):
        current = await engine.run_sync(read)
    else:
        async with engine.connect() as conn:
            current = await conn.run_sync(read)
    head, revisions = _scripts()
    return SchemaStatus(current, head, current is not None and current in revisions)
