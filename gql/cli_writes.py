"""`treegate keys`, `treegate lottery` and `treegate tree`: the write side at a shell.

The lottery and tree commands run the same use cases as the mutations, as an admin whose
actor in the log is `cli:<user>`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import Annotated, TypeVar
from uuid import UUID

import typer
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys as key_store
from db.engine import create_engine, write_transaction
from db.migrate import schema_status
from domain.codec import encode_bulk, encode_message, encode_outcome, encode_tree
from domain.errors import InvalidInput, TreeTooLarge
from domain.outcomes import (
    BulkReport,
    Identity,
    LotteryDrawn,
    LotteryOutcome,
    TransitionApplied,
    TransitionOutcome,
)
from domain.states import State
from domain.transitions import Operation, Role, allowed_targets
from domain.values import Message, TreeFilter, TreeState
from gql.failures import ExitCode, OperationalFailure, explain, safe_url, sqlite_file_problem
from gql.rate_limits import parse_rate, rate_text
from gql.settings import Settings
from resolvers import bulk, lottery, messages, transitions, trees
from resolvers.bulk import BulkRequest
from resolvers.context import Context
from resolvers.transitions import TransitionRequest

keys_app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)
lottery_app = typer.Typer(help="The prompt lottery.", no_args_is_help=True)
tree_app = typer.Typer(
    help="Show, halt, resume or transition one tree, or transition many.", no_args_is_help=True
)

T = TypeVar("T")
KEY_PREFIX = "tg_"


def run_with_engine(
    work: Callable[[AsyncEngine, Settings], Awaitable[T]], *, needs_schema: bool = True
) -> T:
    """Run `work` on an engine built from the environment's settings, disposed afterwards.

    With `needs_schema`, the database must be at this code's schema revision first. A database
    that cannot be reached or is not migrated, a missing file: an `OperationalFailure` that says
    so in one line (`gql.failures`).
    """
    settings = Settings()
    unopenable = sqlite_file_problem(settings.database_url)
    if unopenable is not None:
        raise unopenable

    async def main() -> T:
        engine = create_engine(settings.database_url, settings.pool)
        try:
            if needs_schema:
                await require_schema(engine, settings.database_url)
            return await work(engine, settings)
        finally:
            await engine.dispose()

    try:
        return asyncio.run(main())
    except OperationalFailure:
        raise
    except Exception as exc:
        failure = explain(exc, settings.database_url)
        if failure is None:
            raise
        raise failure from exc


async def require_schema(engine: AsyncEngine, database_url: str) -> None:
    status = await schema_status(engine)
    if status.problem is not None:
        raise OperationalFailure(
            f"the database at {safe_url(database_url)} {status.problem}",
            ExitCode.CONFIG,
        )


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


@keys_app.command("create")
def create_key(
    name: Annotated[
        str,
        typer.Option(metavar="NAME", help="The key's name: the actor in the transition log."),
    ],
    role: Annotated[
        str, typer.Option(metavar="ROLE", help="reader, operator, moderator or admin.")
    ] = "reader",
    replace: Annotated[
        bool, typer.Option("--replace", help="Delete an existing key of this name first.")
    ] = False,
    rate_limit: Annotated[
        str | None,
        typer.Option(
            metavar="RATE",
            help="The key's own request rate: N/s, N/min, N/h or unlimited "
            "(default: its role's, TREEGATE_RATE_LIMITS).",
        ),
    ] = None,
) -> None:
    """Create a key and print it.

    The key is shown only this once: only its hash is stored.
    """
    try:
        chosen = Role[role.upper()]
    except KeyError:
        raise typer.BadParameter(f"unknown role {role!r}", param_hint="--role") from None
    if not 1 <= len(name) <= 128:
        raise typer.BadParameter("1 to 128 characters", param_hint="--name")
    own_rate = None if rate_limit is None else _rate_option(rate_limit)
    key = new_key()

    async def work(engine: AsyncEngine, _settings: Settings) -> bool:
        async with write_transaction(engine) as conn:
            if await key_store.get(conn, name) is not None:
                if not replace:
                    return False
                await key_store.remove(conn, name)
            await key_store.insert(conn, name, chosen, key, datetime.now(UTC), own_rate)
        return True

    if not run_with_engine(work):
        typer.echo(f"a key named {name!r} exists: pick another name or pass --replace", err=True)
        raise typer.Exit(1)
    limited = "" if own_rate is None else f" and rate limit {own_rate}"
    typer.echo(
        f"created key {name!r} with role {chosen.name.lower()}{limited}; it is shown only once:"
    )
    typer.echo(key)


ROLE_DEFAULT = "default"


def _rate_option(text: str) -> str:
    """A rate as given to `--rate-limit`, in its canonical form (what is stored)."""
    try:
        rate = parse_rate(text)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--rate-limit") from None
    return rate_text(rate)


@keys_app.command("rate-limit")
def set_key_rate_limit(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name.")],
    rate: Annotated[
        str,
        typer.Argument(
            metavar="RATE", help=f"N/s, N/min, N/h, unlimited, or {ROLE_DEFAULT} (its role's)."
        ),
    ],
) -> None:
    """Set a key's own request rate.

    Serving processes read it on the key's next request.
    """
    own_rate = None if rate.strip().lower() == ROLE_DEFAULT else _rate_option(rate)

    async def work(engine: AsyncEngine, _settings: Settings) -> bool:
        async with write_transaction(engine) as conn:
            return await key_store.set_rate_limit(conn, name, own_rate)

    if not run_with_engine(work):
        typer.echo(f"no key named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"key {name!r} now has rate limit {own_rate or 'of its role'}")


@keys_app.command("list")
def list_keys() -> None:
    """List keys: name, role, rate limit, prefix, created, revoked."""

    async def work(engine: AsyncEngine, _settings: Settings) -> list[key_store.ApiKey]:
        async with engine.connect() as conn:
            return await key_store.all_keys(conn)

    found = run_with_engine(work)
    if not found:
        typer.echo("no API keys")
        return
    echo_table(
        ("NAME", "ROLE", "RATE", "PREFIX", "CREATED", "REVOKED"),
        [
            (
                k.name,
                k.role.name.lower(),
                k.rate_limit or ROLE_DEFAULT,
                f"{k.prefix}…",
                f"{k.created_at:%Y-%m-%d %H:%M}",
                f"{k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "-",
            )
            for k in found
        ],
    )


def echo_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Rows under a header, in columns two spaces apart (as `docker ps` prints them)."""
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]
    for row in (header, *rows):
        typer.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


@keys_app.command("revoke")
def revoke_key(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The key's name.")],
) -> None:
    """Revoke a key.

    Requests carrying it are refused from now on.
    """

    async def work(engine: AsyncEngine, _settings: Settings) -> bool:
        async with write_transaction(engine) as conn:
            return await key_store.revoke(conn, name, datetime.now(UTC))

    if not run_with_engine(work):
        typer.echo(f"no active key named {name!r}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {name!r}")


def _cli_context(engine: AsyncEngine, settings: Settings) -> Context:
    return Context.create(
        engine,
        settings.request_limits,
        "cli",
        identity=Identity(f"cli:{getpass.getuser()}", Role.ADMIN),
        policy=settings.write_policy,
    )


def _report(outcome: TransitionOutcome | LotteryOutcome) -> None:
    typer.echo(json.dumps(encode_outcome(outcome), indent=2))
    if not isinstance(outcome, TransitionApplied | LotteryDrawn):
        raise typer.Exit(1)


@lottery_app.command("draw")
def draw(
    lang: Annotated[str, typer.Option(metavar="LANG", help="The language to draw for, e.g. en.")],
    max_activate: Annotated[
        int, typer.Option("--max", metavar="N", min=1, help="Trees to activate.")
    ] = 1,
) -> None:
    """Draw waiting prompts into growing, as drawPromptLottery does."""

    async def work(engine: AsyncEngine, settings: Settings) -> LotteryOutcome:
        ctx = _cli_context(engine, settings)
        try:
            return await lottery.draw_prompt_lottery(ctx, lang, max_activate, None)
        finally:
            await ctx.close()

    _report(run_with_engine(work))


def _tree_command(
    operation: Operation, tree_id: UUID, reason: str | None, target: State | None
) -> None:
    async def work(engine: AsyncEngine, settings: Settings) -> TransitionOutcome:
        ctx = _cli_context(engine, settings)
        try:
            request = TransitionRequest(tree_id, operation, target=target, reason=reason)
            return await transitions.transition_tree(ctx, request)
        finally:
            await ctx.close()

    _report(run_with_engine(work))


TreeId = Annotated[UUID, typer.Argument(metavar="TREE_ID", help="The tree's message_tree_id.")]
Reason = Annotated[str | None, typer.Option(metavar="TEXT", help="Recorded in the transition log.")]


@tree_app.command("halt")
def halt(tree_id: TreeId, reason: Reason = None) -> None:
    """Halt a tree (as haltTree)."""
    _tree_command(Operation.HALT_TREE, tree_id, reason, None)


@tree_app.command("resume")
def resume(tree_id: TreeId, reason: Reason = None) -> None:
    """Resume a halted tree (as resumeTree)."""
    _tree_command(Operation.RESUME_TREE, tree_id, reason, None)


def _state(value: str, option: str) -> State:
    try:
        return State(value.lower())
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise typer.BadParameter(
            f"unknown state {value!r}; one of {names}", param_hint=option
        ) from None


@tree_app.command("transition")
def transition(
    tree_id: TreeId,
    to: Annotated[str, typer.Option(metavar="STATE", help="The target state, e.g. ranking.")],
    reason: Reason = None,
) -> None:
    """Move a tree along the transition table (as transitionTree)."""
    _tree_command(Operation.TRANSITION_TREE, tree_id, reason, _state(to, "--to"))


@tree_app.command("bulk")
def bulk_move(
    to: Annotated[str, typer.Option(metavar="STATE", help="The target state, e.g. ranking.")],
    limit: Annotated[
        int, typer.Option(metavar="N", help="Trees to examine, at most [TREEGATE_MAX_BULK].")
    ],
    filter_state: Annotated[
        list[str] | None,
        typer.Option(metavar="STATE", help="Only trees in this state (repeatable)."),
    ] = None,
    filter_lang: Annotated[
        list[str] | None,
        typer.Option(metavar="LANG", help="Only trees of this language (repeatable)."),
    ] = None,
    expected_state: Annotated[
        str | None,
        typer.Option(metavar="STATE", help="Trees elsewhere are rejected (STATE_CHANGED)."),
    ] = None,
    after: Annotated[
        str | None,
        typer.Option(metavar="CURSOR", help="Go on after a previous run's cursor."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be done; change nothing.")
    ] = False,
    reason: Reason = None,
    idempotency_key: Annotated[
        str | None,
        typer.Option(metavar="KEY", help="Run again with it: no tree is moved twice."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
) -> None:
    """Move many trees to one state (as transitionTrees).

    Every tree the filter matches, up to --limit. Trees are taken in message_tree_id order,
    each decided as transitionTree (haltTree, resumeTree) would; the lottery's move is never
    made.
    """
    request = BulkRequest(
        tree_filter=TreeFilter(
            states=None
            if not filter_state
            else tuple(_state(s, "--filter-state") for s in filter_state),
            langs=None if not filter_lang else tuple(filter_lang),
        ),
        target=_state(to, "--to"),
        limit=limit,
        expected=None if expected_state is None else _state(expected_state, "--expected-state"),
        after=after,
        dry_run=dry_run,
        reason=reason,
        idempotency_key=idempotency_key,
    )

    async def work(engine: AsyncEngine, settings: Settings) -> BulkReport:
        ctx = _cli_context(engine, settings)
        try:
            return await bulk.transition_trees(ctx, request)
        finally:
            await ctx.close()

    try:
        report = run_with_engine(work)
    except InvalidInput as invalid:
        raise typer.BadParameter(invalid.message) from None
    cursor = bulk.end_cursor(report)
    if as_json:
        typer.echo(json.dumps(encode_bulk(report) | {"end_cursor": cursor}, indent=2))
    else:
        _bulk_text(report, cursor)
    if report.refused is not None:
        raise typer.Exit(1)


def _bulk_text(report: BulkReport, cursor: str | None) -> None:
    if report.refused is not None:
        typer.echo(f"refused ({report.refused.name}): {report.refused.value}; nothing examined")
        return
    dry = " (dry run: nothing changed)" if report.dry_run else ""
    typer.echo(f"operation {report.operation_id}{dry}")
    typer.echo(f"matched {report.matched}, examined {report.examined}")
    typer.echo(f"{'would apply' if report.dry_run else 'applied'} {report.applied}")
    if report.unchanged:
        typer.echo(f"unchanged {report.unchanged} (already halted)")
    for rejected in report.rejected:
        typer.echo(f"rejected {rejected.count} {rejected.reason.name}")
    if cursor is not None:
        typer.echo(f"more match: go on with --after {cursor}")


TEXT_WIDTH = 100
"""Characters of a message's first line `tree show` prints."""


def _first_line(text: str | None) -> str:
    line = (text or "").strip().split("\n", 1)[0]
    return line if len(line) <= TEXT_WIDTH else line[: TEXT_WIDTH - 1] + "…"


def _review(message: Message) -> str:
    if message.review_result is None:
        return "in review"
    return "accepted" if message.review_result else "rejected"


def _message_line(message: Message, root_depth: int) -> str:
    marks = [message.role]
    if message.rank is not None:
        marks.append(f"rank {message.rank}")
    marks.append(_review(message))
    if message.deleted:
        marks.append("deleted")
    indent = "  " * (message.depth - root_depth)
    return f"{indent}- [{', '.join(marks)}] {_first_line(message.text)}  ({message.id})"


def _show_text(tree: TreeState, found: list[Message]) -> None:
    allowed = ", ".join(s.value for s in allowed_targets(tree.state)) or "none"
    terminal = "terminal" if tree.state.is_terminal else "not terminal"
    typer.echo(f"tree {tree.message_tree_id}")
    typer.echo(f"state: {tree.state.value} ({terminal}; active: {str(tree.active).lower()})")
    typer.echo(f"lang: {tree.lang}  origin: {tree.origin or '-'}  messages: {len(found)}")
    typer.echo(f"allowed transitions: {allowed}")
    root_depth = found[0].depth if found else 0
    for message in found:
        typer.echo(_message_line(message, root_depth))


@tree_app.command("show")
def show(
    tree_id: TreeId,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")] = False,
    deleted: Annotated[
        bool, typer.Option("--deleted", help="Include deleted messages (marked).")
    ] = False,
) -> None:
    """Print a tree's state and its messages, indented, root first.

    Messages come in the order of the API's `messages`: depth-first, replies by rank.
    """

    async def work(
        engine: AsyncEngine, settings: Settings
    ) -> tuple[TreeState | None, list[Message]]:
        ctx = _cli_context(engine, settings)
        try:
            tree = await trees.fetch_tree(ctx, tree_id)
            if tree is None:
                return None, []
            found = await messages.tree_messages(
                ctx, tree_id, include_deleted=deleted, include_spam=True
            )
            return tree, found
        finally:
            await ctx.close()

    try:
        tree, found = run_with_engine(work)
    except TreeTooLarge as too_large:
        typer.echo(f"treegate: {too_large}", err=True)
        raise typer.Exit(1) from None
    if tree is None:
        typer.echo(f"no tree with id {tree_id}", err=True)
        raise typer.Exit(1)
    if as_json:
        document = {"tree": encode_tree(tree), "messages": [encode_message(m) for m in found]}
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    _show_text(tree, found)
