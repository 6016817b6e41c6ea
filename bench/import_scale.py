"""`make bench-import`: `treegate import` at oasst2's size, into PostgreSQL (not in `make test`).

    .venv/bin/python -m bench.import_scale [--trees 70000] [--baseline 7000] [--batch-size 500]

1. Generates two files in the published format (`tests/oa_files.py`, oasst2's flavour, gzipped):
   the baseline (`--baseline` trees) and the full size (`--trees`; 70,000 trees hold about
   210,000 messages, the size of oasst2).
2. For each, creates an empty database on the PostgreSQL server the tests use, runs
   `treegate migrate`, then times `treegate import FILE --quiet` as a user runs it, sampling the
   process's peak RSS (VmHWM) from /proc; then imports the same file again (every tree skipped).
3. Prints trees/s, messages/s and peak memory for both sizes, and the ratios of the full size to
   the baseline: memory should stay flat (about 1.0) while the file grows tenfold. Writes the same
   as JSON to `bench/results/import-<timestamp>.json`. The databases are dropped afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from bench.database import ROOT
from bench.servers import status_kib
from tests.databases import postgres_server_url
from tests.e2e.server import TREEGATE, clean_env, run_cli
from tests.oa_files import Variant, generate_trees, write_file


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trees", type=int, default=70_000)
    parser.add_argument("--baseline", type=int, default=7_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


def server_url(database: str) -> str:
    url = postgres_server_url().set(drivername="postgresql", database=database)
    return url.render_as_string(hide_password=False)


async def admin(sql: str) -> None:
    connection = await asyncpg.connect(server_url("postgres"))
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


def timed_import(env: dict[str, str], path: Path, batch_size: int) -> dict[str, Any]:
    """`treegate import` as a user runs it: wall time, peak RSS, and its own summary line."""
    started = time.monotonic()
    process = subprocess.Popen(
        [TREEGATE, "import", str(path), "--quiet", "--batch-size", str(batch_size)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    peak = 0.0
    while process.poll() is None:
        peak = max(peak, status_kib(process.pid, "VmHWM") / 1024)
        time.sleep(0.05)
    out, err = process.communicate()
    seconds = time.monotonic() - started
    if process.returncode != 0:
        raise RuntimeError(f"import failed ({process.returncode}): {err}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(peak, 1), "summary": out.strip()}


def measure(trees: int, path: Path, batch_size: int) -> dict[str, Any]:
    name = f"treegate_import_bench_{uuid.uuid4().hex[:8]}"
    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        env = clean_env() | {"TREEGATE_DATABASE_URL": server_url(name)}
        migrated = run_cli(env, "migrate")
        if migrated.returncode != 0:
            raise RuntimeError(migrated.stderr)
        print(f"  importing {trees:,} trees ...", file=sys.stderr)
        first = timed_import(env, path, batch_size)
        again = timed_import(env, path, batch_size)
        counts = asyncio.run(_counts(server_url(name)))
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return {"trees": trees, **counts, "first": first, "again": again}


async def _counts(url: str) -> dict[str, int]:
    connection = await asyncpg.connect(url)
    try:
        return {
            "stored_trees": await connection.fetchval("SELECT count(*) FROM message_tree_state"),
            "stored_messages": await connection.fetchval("SELECT count(*) FROM message"),
            "stored_users": await connection.fetchval('SELECT count(*) FROM "user"'),
        }
    finally:
        await connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    runs: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="treegate-import-bench-") as work:
        for label, trees in (("baseline", args.baseline), ("full", args.trees)):
            path = Path(work) / f"{label}.trees.jsonl.gz"
            started = time.monotonic()
            written = write_file(path, generate_trees(trees, seed=1, variant=Variant.OASST2))
            print(
                f"  generated {written.trees:,} trees, {written.messages:,} messages "
                f"({path.stat().st_size / 2**20:.1f} MiB gzipped) in "
                f"{time.monotonic() - started:.1f} s",
                file=sys.stderr,
            )
            run = measure(trees, path, args.batch_size)
            run["messages"] = written.messages
            run["file_mib"] = round(path.stat().st_size / 2**20, 1)
            for key in ("first", "again"):
                run[key]["trees_per_s"] = round(trees / run[key]["seconds"], 1)
                run[key]["messages_per_s"] = round(written.messages / run[key]["seconds"], 1)
            runs[label] = run
    base, full = runs["baseline"], runs["full"]
    result = {
        "kind": "import",
        "batch_size": args.batch_size,
        "runs": runs,
        "ratios": {
            "peak_rss_full_over_baseline": round(
                full["first"]["peak_rss_mib"] / base["first"]["peak_rss_mib"], 3
            ),
            "trees_per_s_full_over_baseline": round(
                full["first"]["trees_per_s"] / base["first"]["trees_per_s"], 3
            ),
        },
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"import-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(show(result))
    print(f"\nresults: {path}")
    complete = all(r["stored_trees"] == r["trees"] for r in runs.values())
    return 0 if complete else 1


def show(result: dict[str, Any]) -> str:
    lines = [
        "import into PostgreSQL     trees  messages  file MiB   seconds  trees/s  messages/s  "
        "peak RSS MiB",
    ]
    for label, run in result["runs"].items():
        for key, name in (("first", "import"), ("again", "again (all skipped)")):
            r = run[key]
            lines.append(
                f"{label + ' ' + name:<24} {run['trees']:>7,} {run['messages']:>9,} "
                f"{run['file_mib']:>9} {r['seconds']:>9} {r['trees_per_s']:>8,.0f} "
                f"{r['messages_per_s']:>11,.0f} {r['peak_rss_mib']:>13}"
            )
    ratios = result["ratios"]
    lines.append(
        f"full / baseline: peak RSS x{ratios['peak_rss_full_over_baseline']}, "
        f"trees/s x{ratios['trees_per_s_full_over_baseline']}"
    )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
