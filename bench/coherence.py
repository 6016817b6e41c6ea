"""How soon a write through one `treegate serve` process shows in another's cached answers.

    .venv/bin/python -m bench.coherence [--writes 200] [--trees 1000] [--cache-s 30]

Two real `treegate serve` processes on one fresh PostgreSQL database (on the server the tests use,
dropped afterwards), each with its count and GET-answer caches kept `--cache-s` seconds, so that
only a write notification (`db/notify.py`) can make them change sooner. Process B's
`treeStateCounts` is asked over GET (cached whole) before the first write. Then, `--writes`
times: `haltTree` or `resumeTree` of one tree through process A, and B asked over GET on one
kept-alive connection, as fast as it answers, until its count reflects the write. The latency is
from A's answer (the write has committed) to B's first answer that reflects it. Prints the
distribution and writes `bench/results/coherence-<UTC time>.json`. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy.engine import URL

from bench.machine import cpu_busy, describe
from tests.databases import postgres_database

RESULTS = Path(__file__).parent / "results"
TREEGATE = str(Path(sys.executable).with_name("treegate"))
COUNTS = {"query": "{ treeStateCounts(groupBy: [STATE]) { state count } }"}
GROWING = "{ messageTreeStates(filter: {states: [GROWING]}, first: 1) { nodes { messageTreeId } } }"
HALT = (
    'mutation($id: UUID!) { haltTree(input: {messageTreeId: $id, reason: "bench"}) { __typename } }'
)
RESUME = "mutation($id: UUID!) { resumeTree(input: {messageTreeId: $id}) { __typename } }"
DEADLINE_S = 10.0
"""A write B has not shown after this long is counted as missed (its cache would show it at TTL)."""


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [TREEGATE, *args], env=env, capture_output=True, text=True, timeout=600, check=True
    )
    return done.stdout


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextmanager
def serve(env: dict[str, str], log: Path) -> Iterator[str]:
    port = free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [TREEGATE, "serve", "--port", str(port)], env=env, stdout=out, stderr=out
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"treegate serve exited: {log.read_text()[-2000:]}")
                try:
                    if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("treegate serve was not ready in 60 s")
                time.sleep(0.1)
            yield base
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def halted(client: httpx.Client) -> int:
    answer = client.get("/graphql", params=COUNTS)
    answer.raise_for_status()
    counts = {c["state"]: c["count"] for c in answer.json()["data"]["treeStateCounts"]}
    return int(counts.get("HALTED_BY_MODERATOR", 0))


def measure(a: str, b: str, key: str, writes: int) -> tuple[list[float], int, int]:
    """Latencies in seconds, writes missed within the deadline, and B's GETs asked."""
    auth = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    missed = 0
    polls = 0
    with httpx.Client(base_url=a, timeout=30) as to_a, httpx.Client(base_url=b, timeout=30) as to_b:
        tree = to_a.post("/graphql", json={"query": GROWING}).json()["data"]["messageTreeStates"][
            "nodes"
        ][0]["messageTreeId"]
        count = halted(to_b)
        for n in range(writes):
            document, change = (HALT, 1) if n % 2 == 0 else (RESUME, -1)
            answer = to_a.post(
                "/graphql", json={"query": document, "variables": {"id": tree}}, headers=auth
            ).json()
            written = time.perf_counter()
            outcome = next(iter(answer["data"].values()))["__typename"]
            if outcome != "TransitionApplied":
                raise RuntimeError(f"write {n} was not applied: {answer}")
            count += change
            while True:
                polls += 1
                if halted(to_b) == count:
                    latencies.append(time.perf_counter() - written)
                    break
                if time.perf_counter() - written > DEADLINE_S:
                    missed += 1
                    break
    return latencies, missed, polls


def quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    cpu_busy_before = await asyncio.to_thread(cpu_busy)  # another load makes the figures slower
    async with postgres_database("treegate_coherence") as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TREEGATE_")}
        env |= {
            "TREEGATE_DATABASE_URL": URL.render_as_string(url, hide_password=False),
            "TREEGATE_COUNT_CACHE_S": str(args.cache_s),
            "TREEGATE_RESPONSE_CACHE_S": str(args.cache_s),
            "TREEGATE_LOG_LEVEL": "warning",
        }
        cli(env, "migrate")
        cli(env, "seed", "--trees", str(args.trees))
        key = cli(env, "keys", "create", "--name", "bench", "--role", "moderator").split()[-1]
        logs = Path(args.logs)
        with serve(env, logs / "coherence-a.log") as a, serve(env, logs / "coherence-b.log") as b:
            latencies, missed, polls = await asyncio.to_thread(measure, a, b, key, args.writes)
    ms = [1000 * s for s in latencies]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": describe(),
        "cpu_busy_before": cpu_busy_before,
        "config": {"writes": args.writes, "trees": args.trees, "cache_s": args.cache_s},
        "writes": args.writes,
        "shown": len(latencies),
        "missed": missed,
        "polls": polls,
        "latency_ms": {
            "min": round(min(ms), 2),
            "p50": round(statistics.median(ms), 2),
            "p90": round(quantile(ms, 0.9), 2),
            "p99": round(quantile(ms, 0.99), 2),
            "max": round(max(ms), 2),
            "within_100ms": sum(1 for m in ms if m <= 100),
        },
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--trees", type=int, default=1000)
    parser.add_argument("--cache-s", type=float, default=30)
    parser.add_argument("--logs", default="/tmp", help="where the servers' logs go")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"coherence-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    latency = result["latency_ms"]
    print(
        f"{result['shown']} of {result['writes']} writes shown by the other process "
        f"({result['missed']} missed within {DEADLINE_S:.0f} s, caches of {args.cache_s:g} s); "
        f"latency ms: min {latency['min']}, p50 {latency['p50']}, p90 {latency['p90']}, "
        f"p99 {latency['p99']}, max {latency['max']}; within 100 ms: "
        f"{latency['within_100ms']} of {result['shown']}"
    )
    print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")


if __name__ == "__main__":
    main()
