"""The `treegate` command line."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import os
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.core import TyperGroup

from db.engine import normalize_url
from gql.cli_data import export_trees, import_trees
from gql.cli_persisted import persisted_app
from gql.cli_writes import keys_app, lottery_app, run_with_engine, tree_app
from gql.failures import ExitCode, OperationalFailure, explain, safe_url
from gql.settings import Settings
from resolvers.metrics import MULTIPROCESS_DIR


class _Group(TyperGroup):
    """Says an operational failure in one line and exits with its code (`gql.failures`); the
    traceback only with --debug or TREEGATE_LOG_LEVEL=debug."""

    def invoke(self, ctx: Any) -> Any:  # typer.Context (Typer types it with its own click)
        try:
            return super().invoke(ctx)
        except BrokenPipeError:
            # What reads our output stopped reading (`treegate export - | head`): stop quietly,
            # with the status of a process a closed pipe ended, as other command-line tools do.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise typer.Exit(128 + signal.SIGPIPE) from None
        except Exception as exc:
            failure = explain(exc, None)
            if failure is None or _debugging(ctx):
                raise
            typer.echo(f"treegate: {failure}", err=True)
            raise typer.Exit(failure.code) from None


def _debugging(ctx: typer.Context) -> bool:
    return bool(ctx.params.get("debug")) or os.environ.get("TREEGATE_LOG_LEVEL", "") == "debug"


app = typer.Typer(
    cls=_Group,
    help="Treegate: a GraphQL gateway over Open-Assistant's message tree state machine.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the full traceback of a failure.")
    ] = False,
) -> None:
    """Treegate: a GraphQL gateway over Open-Assistant's message tree state machine."""


app.add_typer(keys_app, name="keys")
app.add_typer(lottery_app, name="lottery")
app.add_typer(tree_app, name="tree")
app.add_typer(persisted_app, name="persisted")
app.command("import")(import_trees)
app.command("export")(export_trees)

SCHEMA_FILE = Path(__file__).resolve().parent.parent / "schema" / "schema.graphql"


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(metavar="ADDRESS", help="Bind address [TREEGATE_HOST].")
    ] = None,
    port: Annotated[int | None, typer.Option(metavar="PORT", help="Port [TREEGATE_PORT].")] = None,
    workers: Annotated[
        int | None, typer.Option(metavar="N", help="Processes [TREEGATE_WORKERS].")
    ] = None,
) -> None:
    """Serve the GraphQL API.

    GraphiQL is on /graphql in development. On SIGTERM (or Ctrl-C) it stops accepting
    connections, lets the requests in flight finish within TREEGATE_SHUTDOWN_GRACE_S, closes the
    database pool and exits 0.
    """

    import uvicorn

    settings = Settings()
    processes = workers or settings.workers
    _check_single_process_sqlite(settings.database_url, processes)
    _check_database()
    lighten_log_records()
    # uvicorn handles the signal while it serves, shuts down gracefully, then raises the signal
    # again for the handler that was there before: this one, so that a requested stop is a
    # clean exit (status 0) rather than a death by signal.
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    with _metrics_shared_by(processes):
        uvicorn.run(
            "gql.app:create_app",
            factory=True,
            host=host or settings.host,
            port=port or settings.port,
            workers=processes,
            log_level=settings.log_level,
            log_config=log_config(settings.log_level),
            # Treegate writes its own access line per GraphQL request (`treegate.access`: request
            # id, operation, status, outcome, duration); uvicorn's would be a second one.
            access_log=False,
            proxy_headers=False,
            timeout_graceful_shutdown=settings.shutdown_grace_s,
            # With --workers, how long a worker may leave the supervisor's ping unanswered before
            # it is killed as hung and replaced. uvicorn's 5 s is shorter than a worker's start
            # (imports, the schema) takes on a busy 2-core host: every worker was killed while
            # starting, again and again.
            timeout_worker_healthcheck=WORKER_HEALTHCHECK_S,
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


def _check_database() -> None:
    """Refuse to serve a database without this code's schema; serve one that cannot be reached
    now (it may be starting: /readyz answers 503 until it is back), saying so."""

    async def nothing(_engine: AsyncEngine, _settings: Settings) -> None:
        return None

    try:
        run_with_engine(nothing)
    except OperationalFailure as failure:
        if failure.code is not ExitCode.UNAVAILABLE:
            raise
        typer.echo(f"treegate: {failure}; serving anyway, /readyz answers 503 until then", err=True)


@contextlib.contextmanager
def _metrics_shared_by(processes: int) -> Iterator[None]:
    """With several workers, a directory where prometheus-client keeps every worker's metrics,
    so that any worker's /metrics answers for all of them (`resolvers.metrics`)."""
    if processes == 1 or os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="treegate-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory  # read by the workers as they start
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]


WORKER_HEALTHCHECK_S = 30
"""Seconds a worker may not answer its supervisor's ping before it is replaced (`--workers`)."""

_SERVING_LOCKS: list[int] = []
"""Open descriptors of the lock files of SQLite databases this process serves (kept to the end)."""


def _check_single_process_sqlite(database_url: str, processes: int) -> None:
    """SQLite is served by one process: refuse --workers above 1, warn about a second server.

    A process's caches learn of another process's writes through PostgreSQL's NOTIFY
    (`db.notify`); SQLite has none, so several processes on one file would each answer from
    caches the others' writes do not clear. A second `treegate serve` on the same file is
    found by an advisory lock on `<file>.serve-lock`, held while this process runs."""
    url = normalize_url(database_url)
    if url.get_backend_name() != "sqlite":
        return
    if processes > 1:
        raise typer.BadParameter(
            "SQLite is served by one process: several would each keep caches that the others' "
            "writes do not clear. Use --workers 1, or PostgreSQL for several processes",
            param_hint="'--workers' / TREEGATE_WORKERS",
        )
    if not url.database or url.database == ":memory:":
        return
    path = Path(url.database).resolve()
    fd = os.open(f"{path}.serve-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        typer.echo(
            f"treegate: warning: another `treegate serve` is serving {path}. SQLite is served "
            "by one process: each process's caches show the other's writes only after "
            "TREEGATE_COUNT_CACHE_S and TREEGATE_RESPONSE_CACHE_S. Use PostgreSQL for several "
            "processes",
            err=True,
        )
        return
    _SERVING_LOCKS.append(fd)


def _stopped(_signal: int, _frame: object) -> None:
    """The stop signal, raised again by uvicorn after its graceful shutdown: nothing to do."""


@app.command()
def migrate(
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            metavar="SECONDS",
            min=0,
            help="Wait up to this long for the database to accept connections (a container "
            "started beside its database does) [TREEGATE_MIGRATE_WAIT_S, 0].",
        ),
    ] = None,
) -> None:
    """Create or upgrade the tables.

    Treegate's tables, and Open-Assistant's where absent; a database already at this version is
    left as it is.
    """
    from db.engine import wait_until_reachable
    from db.faults import Fault
    from db.migrate import upgrade

    async def work(engine: AsyncEngine, settings: Settings) -> str:
        within = settings.migrate_wait_s if wait is None else wait

        def waiting(fault: Fault) -> None:
            typer.echo(
                f"waiting up to {within:g} s for the database at "
                f"{safe_url(settings.database_url)} ({fault.reason})",
                err=True,
            )

        await wait_until_reachable(engine, within, waiting)
        await upgrade(engine)
        return settings.database_url

    typer.echo(f"migrated {safe_url(run_with_engine(work, needs_schema=False))}")


@app.command()
def seed(
    trees: Annotated[int, typer.Option(metavar="N", min=1, help="How many trees to write.")] = 2000,
    seed: Annotated[
        int, typer.Option("--seed", metavar="N", help="Random seed: same seed, same data.")
    ] = 0,
    if_empty: Annotated[
        bool, typer.Option("--if-empty", help="Do nothing (and succeed) if trees exist.")
    ] = False,
) -> None:
    """Write a demo data set.

    Realistic (oasst2's distribution) and deterministic (the same seed writes the same data),
    and it keeps every rule Treegate enforces.
    """
    from db import seed as seeding

    async def work(engine: AsyncEngine, settings: Settings) -> int:
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
        report = await seeding.seed(engine, trees, seed, max_active_trees=settings.max_active_trees)
        typer.echo(
            f"seeded {report.trees} trees, {report.messages} messages, "
            f"{report.users} users (seed {seed})"
        )
        return 0

    raise typer.Exit(run_with_engine(work))


@app.command()
def prune() -> None:
    """Delete expired idempotency keys now.

    A serving process also does it every TREEGATE_PRUNE_INTERVAL_S.
    """
    from resolvers.context import utc_now
    from resolvers.maintenance import prune_expired

    async def work(engine: AsyncEngine, _settings: Settings) -> int:
        return await prune_expired(engine, utc_now())

    deleted = run_with_engine(work)
    typer.echo(f"deleted {deleted} expired idempotency key{'' if deleted == 1 else 's'}")


@app.command("export-schema")
def export_schema(
    output: Annotated[
        Path, typer.Option(metavar="FILE", help="Where to write the SDL.")
    ] = SCHEMA_FILE,
    check: Annotated[
        bool, typer.Option("--check", help="Fail if the file differs instead of writing it.")
    ] = False,
) -> None:
    """Write the GraphQL schema (SDL) to a file.

    By default schema/schema.graphql, the committed copy.
    """
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
    """Print the state machine as Markdown.

    The states and the transition table, as in the README.
    """
    from gql.docs import state_machine_markdown

    typer.echo(state_machine_markdown(), nl=False)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()
