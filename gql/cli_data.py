"""`treegate import` and `treegate export`: Open-Assistant's published tree files."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn
from sqlalchemy.ext.asyncio import AsyncEngine

from db import oa_export, oa_import
from domain.states import State
from gql.cli_writes import run_with_engine
from gql.settings import Settings

err = Console(stderr=True)


def import_trees(
    file: Annotated[
        Path,
        typer.Argument(metavar="FILE", readable=False, help="A `.trees.jsonl` file, or `.gz`."),
    ],
    origin: Annotated[
        str | None,
        typer.Option(metavar="NAME", help="The trees' origin, in place of the file's."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Report invalid lines and go on (the default is to stop)."
        ),
    ] = False,
    batch_size: Annotated[
        int,
        typer.Option(metavar="N", min=1, max=10_000, help="Trees written per transaction."),
    ] = oa_import.DEFAULT_BATCH,
    quiet: Annotated[bool, typer.Option("--quiet", help="No progress bar.")] = False,
) -> None:
    """Import an Open-Assistant tree export.

    The file is JSON Lines, gzipped or not, one tree per line: its users, messages and tree
    state are written. Trees already present are skipped, so importing a file again changes
    nothing.
    """
    size = file.stat().st_size
    started = time.monotonic()
    progress = Progress(
        TextColumn("[bold]importing[/] {task.fields[trees]:,} trees"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:,.0f} trees/s"),
        TimeElapsedColumn(),
        console=err,
        disable=quiet or not err.is_terminal,
    )
    task = progress.add_task("import", total=size, trees=0, rate=0.0)

    def advance(report: oa_import.ImportReport, position: int) -> None:
        elapsed = max(time.monotonic() - started, 1e-9)
        progress.update(task, completed=position, trees=report.trees, rate=report.trees / elapsed)

    def invalid(failure: oa_import.ImportFailed) -> None:
        err.print(f"[yellow]skipped[/] {failure}", markup=True, highlight=False)

    async def work(engine: AsyncEngine, _settings: Settings) -> oa_import.ImportReport:
        return await oa_import.import_file(
            engine,
            file,
            origin=origin,
            skip_invalid=skip_invalid,
            batch_size=batch_size,
            progress=advance,
            on_invalid=invalid,
        )

    try:
        with progress:
            report = run_with_engine(work)
    except (oa_import.ImportFailed, oa_import.ImportRefused) as exc:
        err.print(f"[red]import stopped:[/] {exc}", markup=True, highlight=False)
        if isinstance(exc, oa_import.ImportFailed):
            err.print(
                "Every batch before that line was imported; nothing of its own batch was. Fix "
                "the line and import again (trees already imported are skipped), or pass "
                "--skip-invalid.",
                highlight=False,
            )
        raise typer.Exit(1) from None
    elapsed = time.monotonic() - started
    typer.echo(
        f"imported {counted(report.trees, 'tree')} ({counted(report.messages, 'message')}, "
        f"{counted(report.users, 'new user')}) from {file} in {elapsed:.1f} s "
        f"({report.trees / max(elapsed, 1e-9):,.0f} trees/s); skipped "
        f"{counted(report.skipped, 'tree')} already present; "
        f"{counted(report.invalid, 'invalid line')}"
    )


def counted(n: int, noun: str) -> str:
    """`1 tree`, `2,000 trees`."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def export_trees(
    file: Annotated[
        str,
        typer.Argument(
            metavar="FILE", help="Where to write (`.gz`: gzipped; `-`: standard output)."
        ),
    ],
    state: Annotated[
        list[str] | None,
        typer.Option("--state", metavar="STATE", help="Only trees in this state (repeatable)."),
    ] = None,
    lang: Annotated[
        list[str] | None,
        typer.Option("--lang", metavar="LANG", help="Only trees in this language (repeatable)."),
    ] = None,
) -> None:
    """Export trees in Open-Assistant's tree export format.

    One tree per line, as `treegate import` reads it.
    """
    states = [_state(s) for s in state or ()]
    started = time.monotonic()

    async def work(engine: AsyncEngine, _settings: Settings) -> int:
        if file == "-":
            return await oa_export.export_file(
                engine, None, states=states, langs=lang or (), stdout=sys.stdout.buffer
            )
        return await oa_export.export_file(engine, Path(file), states=states, langs=lang or ())

    count = run_with_engine(work)
    if file != "-":
        typer.echo(f"exported {count:,} trees to {file} in {time.monotonic() - started:.1f} s")


def _state(value: str) -> str:
    try:
        return State(value.lower()).value
    except ValueError:
        names = ", ".join(s.value for s in State)
        raise typer.BadParameter(
            f"{value!r} is not a state ({names})", param_hint="--state"
        ) from None
