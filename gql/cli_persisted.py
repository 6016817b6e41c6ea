"""`treegate persisted add|list`: register the documents an allow-listed server runs."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from graphql import GraphQLError, OperationDefinitionNode, parse, validate
from sqlalchemy.ext.asyncio import AsyncEngine

from db import persisted as store
from db.engine import write_transaction
from gql.cli_writes import echo_table, run_with_engine
from gql.settings import Settings
from schema.build import build_schema

persisted_app = typer.Typer(
    help="Register the documents an allow-listed server runs.",
    no_args_is_help=True,
)


def checked(path: Path) -> tuple[str, str | None]:
    """The document of a .graphql file, valid against the schema; its first operation's name."""
    text = path.read_text(encoding="utf-8")  # a missing file: said by `gql.failures`
    try:
        document = parse(text)
    except GraphQLError as error:
        raise typer.BadParameter(f"{path}: {error.message}") from None
    errors = validate(build_schema().graphql_schema, document)
    if errors:
        raise typer.BadParameter(f"{path}: {errors[0].message}")
    names = [
        d.name.value
        for d in document.definitions
        if isinstance(d, OperationDefinitionNode) and d.name is not None
    ]
    return text, (names[0] if names else path.stem)


@persisted_app.command("add")
def add(
    files: Annotated[
        list[Path], typer.Argument(metavar="FILE...", help=".graphql files, one document each.")
    ],
) -> None:
    """Register documents.

    Each must be valid against the schema; prints each one's SHA-256.
    """
    documents = [(path, *checked(path)) for path in files]

    async def work(engine: AsyncEngine, _settings: Settings) -> list[tuple[Path, str, bool]]:
        added = []
        async with write_transaction(engine) as conn:
            for path, text, name in documents:
                query, new = await store.add(conn, text, name, datetime.now(UTC))
                added.append((path, query.sha256, new))
        return added

    for path, digest, new in run_with_engine(work):
        typer.echo(f"{digest}  {path}  {'added' if new else 'already registered'}")


@persisted_app.command("list")
def list_documents() -> None:
    """List registered documents: SHA-256, name, registered at."""

    async def work(engine: AsyncEngine, _settings: Settings) -> list[store.PersistedQuery]:
        async with engine.connect() as conn:
            return await store.all_queries(conn)

    found = run_with_engine(work)
    if not found:
        typer.echo("no persisted queries")
        return
    echo_table(
        ("SHA256", "NAME", "REGISTERED"),
        [(q.sha256, q.name or "-", f"{q.created_at:%Y-%m-%d %H:%M}") for q in found],
    )
