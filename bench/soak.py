"""`make soak`: a long mixed load with a database restart every two minutes (not in `make test`).

    .venv/bin/python -m bench.soak [--minutes 10] [--restart-every 120] [--clients 20]

1. Starts a throwaway PostgreSQL cluster (its own port and data directory, as the fault tests
   do: `tests/faults/cluster.py`), migrates and seeds a database, creates an admin key.
2. Serves it with `treegate serve` (caches off: every request reaches the database).
3. Runs `--clients` clients sending the fault tests' mix (`tests/faults/mixed_load.py`: half
   queries, half halts, resumes, transitions and draws) for `--minutes`, and restarts the
   database every `--restart-every` seconds, `fast` and `immediate` in turn.
4. Reports calls by outcome and error kind, latency, recovery time after each restart (from the
   database accepting connections until no call failed), the server's memory over the run, and
   the invariants checked afterwards (log replay, exactly-once); writes the same as JSON to
   `bench/results/soak-<timestamp>.json`. Exits 1 if an invariant or a status was violated.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.database import ROOT
from bench.servers import status_kib
from tests.e2e.server import server_process
from tests.faults.cluster import RestartTimings, ThrowawayCluster
from tests.faults.deployment import deploy
from tests.faults.mixed_load import (
    Call,
    MixedLoad,
    check_invariants,
    recovery_after,
    tally,
    tree_states,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--restart-every", type=float, default=120.0, help="seconds")
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--trees", type=int, default=2000)
    parser.add_argument("--results-dir", type=Path, default=ROOT / "bench" / "results")
    return parser.parse_args(argv)


async def soak(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    with ThrowawayCluster.create() as cluster:
        cluster.start()
        deployment = deploy(cluster, "treegate_soak", args.trees, log_level="warning")
        url = deployment.url
        initial = await tree_states(url)
        with server_process(deployment.env, work / "server.log") as server:
            load = MixedLoad(
                server.base, deployment.key, sorted(initial), clients=args.clients, seed=1
            )
            started = time.monotonic()
            deadline = started + args.minutes * 60
            restarts: list[tuple[str, RestartTimings]] = []
            memory: list[tuple[float, float]] = []

            async def restarter() -> None:
                modes = ("fast", "immediate")
                while True:
                    next_at = started + args.restart_every * (len(restarts) + 1)
                    if next_at >= deadline - 10:
                        return
                    await asyncio.sleep(next_at - time.monotonic())
                    mode = modes[len(restarts) % 2]
                    timings = await asyncio.to_thread(cluster.restart, mode)  # type: ignore[arg-type]
                    restarts.append((mode, timings))
                    print(
                        f"  restart {len(restarts)} ({mode}): down "
                        f"{timings.downtime * 1000:.0f} ms",
                        file=sys.stderr,
                    )

            async def sampler() -> None:
                while time.monotonic() < deadline:
                    rss = status_kib(server.process.pid, "VmRSS") / 1024
                    memory.append((time.monotonic() - started, rss))
                    await asyncio.sleep(5)

            print(
                f"soak: {args.minutes:g} min, {args.clients} clients, a restart every "
                f"{args.restart_every:g} s",
                file=sys.stderr,
            )
            calls, *_ = await asyncio.gather(
                load.run(lambda: time.monotonic() >= deadline), restarter(), sampler()
            )
            elapsed = time.monotonic() - started
        invariants = await check_invariants(url, initial, calls)
    return summarize(args, calls, restarts, memory, elapsed, invariants)


def summarize(
    args: argparse.Namespace,
    calls: Sequence[Call],
    restarts: Sequence[tuple[str, RestartTimings]],
    memory: Sequence[tuple[float, float]],
    elapsed: float,
    invariants: Any,
) -> dict[str, Any]:
    bounds = [t.stop_requested for _, t in restarts] + [float("inf")]
    per_restart = []
    for n, (mode, timings) in enumerate(restarts):
        # This restart's calls: begun once it was requested, ended before the next one was.
        window = [
            c for c in calls if timings.stop_requested <= c.started and c.ended < bounds[n + 1]
        ]
        failed = [c for c in window if c.failed]
        per_restart.append(
            {
                "mode": mode,
                "downtime_ms": round(timings.downtime * 1000, 1),
                "recovery_s": round(recovery_after(window, timings.accepting), 3),
                "failed_calls": len(failed),
                "failed_by_kind": tally(failed),
            }
        )
    seconds = [c.seconds for c in calls]
    statuses: dict[str, int] = {}
    for call in calls:
        statuses[str(call.status)] = statuses.get(str(call.status), 0) + 1
    unexpected = [c for c in calls if c.failed and c.outcome != "unavailable"]
    return {
        "kind": "soak",
        "minutes": args.minutes,
        "clients": args.clients,
        "restart_every_s": args.restart_every,
        "trees": args.trees,
        "elapsed_s": round(elapsed, 1),
        "calls": len(calls),
        "calls_per_s": round(len(calls) / elapsed, 1),
        "statuses": statuses,
        "outcomes": tally(calls),
        "unexpected": len(unexpected),
        "latency_ms": {
            "p50": round(statistics.median(seconds) * 1000, 2) if seconds else 0,
            "p99": round(statistics.quantiles(seconds, n=100)[98] * 1000, 2) if seconds else 0,
            "max": round(max(seconds, default=0) * 1000, 2),
        },
        "restarts": per_restart,
        "rss_mib": {
            "first": round(memory[0][1], 1) if memory else 0,
            "last": round(memory[-1][1], 1) if memory else 0,
            "peak": round(max((m for _, m in memory), default=0), 1),
        },
        "invariants": {
            "ok": invariants.ok,
            "log_rows": invariants.log_rows,
            "applied": invariants.applied,
            "committed_unanswered": invariants.committed_unanswered,
            "violations": invariants.violations[:50],
        },
    }


def show(result: dict[str, Any]) -> str:
    lines = [
        f"soak: {result['elapsed_s']} s, {result['clients']} clients, {result['calls']:,} calls "
        f"({result['calls_per_s']}/s), statuses {result['statuses']}",
        f"outcomes: {result['outcomes']}",
        f"latency ms: p50 {result['latency_ms']['p50']}, p99 {result['latency_ms']['p99']}, "
        f"max {result['latency_ms']['max']}",
        f"server RSS MiB: first {result['rss_mib']['first']}, last {result['rss_mib']['last']}, "
        f"peak {result['rss_mib']['peak']}",
        "restart  mode        down ms  recovery s  failed calls (by kind)",
    ]
    for n, restart in enumerate(result["restarts"], 1):
        lines.append(
            f"{n:>7}  {restart['mode']:<10} {restart['downtime_ms']:>8}  "
            f"{restart['recovery_s']:>10}  {restart['failed_calls']} {restart['failed_by_kind']}"
        )
    inv = result["invariants"]
    lines.append(
        f"invariants: {'OK' if inv['ok'] else 'VIOLATED'}: {inv['log_rows']:,} log rows replay to "
        f"every tree's state; {inv['applied']:,} applied mutations each logged once; "
        f"{inv['committed_unanswered']} committed but answered 503 (lost answers); "
        f"unexpected failures: {result['unexpected']}"
    )
    lines += [f"  {v}" for v in inv["violations"]]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="treegate-soak-") as work:
        result = asyncio.run(soak(args, Path(work)))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    args.results_dir.mkdir(parents=True, exist_ok=True)
    path = args.results_dir / f"soak-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(show(result))
    print(f"\nresults: {path}")
    return 0 if result["invariants"]["ok"] and not result["unexpected"] else 1


if __name__ == "__main__":
    sys.exit(main())
