"""The `treegate` command line."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from gql.cli_data import export_trees, import_trees
from gql.cli_persisted import persisted_app
from gql.cli_writes import keys_app, lottery_app, run_with_engine, tree_app
from gql.settings import Settings

app = typer.Typer(
    help="Treegate: a GraphQL gateway over Open-Assistant's message tree state machine.",
    no_args_is_help=True,
    add_completion=False,
)

app.add_typer(keys_app, name="keys")
app.add_typer(lottery_app, name="lottery")
app.add_typer(tree_app, name="tree")
app.add_typer(persisted_app, name="persisted")
app.command("import")(import_trees)
app.command("export")(export_trees)

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Bind address [TREEGATE_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port [TREEGATE_PORT].")] = None,
    workers: Annotated[int | None, typer.Option(help="Processes [TREEGATE_WORKERS].")] = None,
) -> None:
    """Serve the GraphQL API (GraphiQL on /graphql in development).

    On SIGTERM (or Ctrl-C) it stops accepting connections, lets the requests in flight finish
    within TREEGATE_SHUTDOWN_GRACE_S, closes the database pool and exits 0.
    """
    import signal

    import uvicorn

    settings = Settings()
    lighten_log_records()
    # uvicorn handles the signal while it serves, shuts down gracefully, then raises the signal
    # again for the handler that was there before: this one, so that a requested stop is a
    # clean exit (status 0) rather than a death by signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    uvicorn.run(
        "gql.app:create_app",
        factory=True,
        host=host or settings.host,
        port=port or settings.port,
        workers=workers or settings.workers,
        log_level=settings.log_level,
        log_config=log_config(settings.log_level),
        # Treegate writes its own access line per GraphQL request (`treegate.access`: request
        # id, operation, status, outcome, duration); uvicorn's would be a second one.
        access_log=False,
        proxy_headers=False,
        timeout_graceful_shutdown=settings.shutdown_grace_s,
    )


def lighten_log_records() -> None:
    """Leave out of every log record what no Treegate line prints: the thread, process and
    calling frame (found by walking the stack), as the logging HOWTO's "Optimization" section
    describes. The access line is written once per request: this is a tenth of its cost.

    The calling frame has no public switch: the HOWTO's way is `logging._srcfile = None`. This
    is the one place Treegate sets it; `tests/test_dependencies.py` fails, naming it, if a
    Python release drops it (a record would then carry its caller again)."""
    import logging

    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging configuration, plus Treegate's own loggers (`treegate.*`: the access
    line of every GraphQL request, database faults, masked errors), with time and name."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["treegate"] = {
        "()": "gql.logs.Formatter",
        "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
    }
    config["handlers"]["treegate"] = {
        "formatter": "treegate",
        "class": "gql.logs.BatchedStreamHandler",
        "stream": "ext://sys.stderr",
    }
    config["loggers"]["treegate"] = {
        "handlers": ["treegate"],
        "level": level.upper(),
        "propagate": False,
    }
    return config


def _stopped(_signal: int, _frame: object) -> None:
    """The stop signal, raised again by uvicorn after its graceful shutdown: nothing to do."""


@app.command()
def migrate() -> None:
    """Create or upgrade the tables (Treegate's, and Open-Assistant's where absent)."""
    from db.migrate import upgrade

    async def work(engine: AsyncEngine, settings: Settings) -> str:
        await upgrade(engine)
        return settings.database_url

    typer.echo(f"migrated {_safe_url(run_with_engine(work))}")


@app.command()
def seed(
    trees: Annotated[int, typer.Option(min=1, help="How many trees to write.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: same seed, same data.")] = 0,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (and succeed) if trees exist.")
    ] = False,
) -> None:
    """Write a realistic, deterministic demo data set (oasst2's distribution)."""
    from db import seed as seeding

    async def work(engine: AsyncEngine, _settings: Settings) -> int:
        existing = await seeding.count_trees(engine)
        if existing:
            if if_empty:
                typer.echo(f"the database already holds {existing} trees: not seeding")
                return 0
            typer.echo(
                f"the database already holds {existing} trees; seed only an empty "
                "database (or pass --if-empty)",
                err=True,
            )
            return 1
        report = await seeding.seed(engine, trees, seed)
        typer.echo(
            f"seeded {report.trees} trees, {report.messages} messages, "
            f"{report.users} users (seed {seed})"
        )
        return 0

    raise typer.Exit(run_with_engine(work))


@app.command()
def prune() -> None:
    """Delete expired idempotency keys now (a serving process also does it every
    TREEGATE_PRUNE_INTERVAL_S)."""
    from resolvers.context import utc_now
    from resolvers.maintenance import prune_expired

    async def work(engine: AsyncEngine, _settings: Settings) -> int:
        return await prune_expired(engine, utc_now())

    deleted = run_with_engine(work)
    typer.echo(f"deleted {deleted} expired idempotency key{'' if deleted == 1 else 's'}")


@app.command("export-schema")
def export_schema(
    output: Annotated[Path, typer.Option(help="Where to write the SDL.")] = SCHEMA_FILE,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs instead of writing it.")
    ] = False,
) -> None:
    """Write the GraphQL schema (SDL) to schema/schema.graphql."""
    from schema.build import sdl

    text = sdl()
    if check:
        if not output.exists() or output.read_text() != text:
            typer.echo(f"{output} is out of date: run `treegate export-schema`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{output} is up to date")
        return
    output.write_text(text)
    typer.echo(f"wrote {output}")


@app.command("state-table")
def state_table() -> None:
    """Print the states and the transition table as Markdown (as in the README)."""
    from gql.docs import state_machine_markdown

    typer.echo(state_machine_markdown(), nl=False)


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
