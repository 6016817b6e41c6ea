"""transitionTrees' throughput on SQLite and PostgreSQL (not in `make test`).

    .venv/bin/python -m bench.bulk_throughput [--trees 1000] [--runs 3]

Each run makes a fresh database (an SQLite file; a database on the PostgreSQL server the tests
use, dropped afterwards), migrates it and seeds `--trees` demo trees (as `treegate seed`), then
calls the use case as the API does, for an admin, with the default batch of 100 trees per
transaction: a dry run halting every tree (limit = trees), then the real run. It prints, per
backend, trees examined per second and trees halted (compare-and-set and log row) per second,
the median of the runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from sqlalchemy.engine import URL

from db.engine import create_engine
from db.migrate import upgrade
from db.seed import seed
from domain.outcomes import BulkReport, Identity
from domain.states import State
from domain.transitions import Role
from domain.values import TreeFilter
from resolvers.bulk import BulkRequest, transition_trees
from resolvers.context import Context, Limits, WritePolicy
from tests.databases import postgres_database, sqlite_url


@dataclass(frozen=True)
class Timed:
    report: BulkReport
    seconds: float

    @property
    def examined_per_s(self) -> float:
        return self.report.examined / self.seconds

    @property
    def applied_per_s(self) -> float:
        return self.report.applied / self.seconds


@asynccontextmanager
async def database(backend: str) -> AsyncIterator[URL]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as directory:
            yield sqlite_url(Path(directory) / "bulk.db")
        return
    async with postgres_database("treegate_bulk_bench") as url:
        yield url


async def one_run(backend: str, trees: int) -> tuple[Timed, Timed]:
    async with database(backend) as url:
        engine = create_engine(url)
        try:
            await upgrade(engine)
            await seed(engine, trees, 0)
            request = BulkRequest(TreeFilter(), State.HALTED_BY_MODERATOR, trees)
            timed = []
            for dry in (True, False):
                ctx = Context.create(
                    engine,
                    Limits(),
                    "bench",
                    identity=Identity("bench", Role.ADMIN),
                    policy=WritePolicy(max_bulk=trees),
                )
                try:
                    started = time.perf_counter()
                    report = await transition_trees(ctx, replace(request, dry_run=dry))
                    timed.append(Timed(report, time.perf_counter() - started))
                finally:
                    await ctx.close()
            return timed[0], timed[1]
        finally:
            await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    for backend in ("sqlite", "postgresql"):
        runs = [asyncio.run(one_run(backend, args.trees)) for _ in range(args.runs)]
        dry = statistics.median(d.examined_per_s for d, _ in runs)
        real = statistics.median(r.examined_per_s for _, r in runs)
        halted = statistics.median(r.applied_per_s for _, r in runs)
        last = runs[-1][1].report
        print(
            f"{backend}: {args.trees} trees, {args.runs} runs (median): dry run "
            f"{dry:,.0f} trees/s; real run {real:,.0f} trees/s examined, {halted:,.0f} halted/s "
            f"(last run: {last.applied} halted, {last.unchanged} already halted, "
            f"{sum(r.count for r in last.rejected)} rejected)"
        )


if __name__ == "__main__":
    main()
