"""`make bench`: Treegate against a hand-written ceiling server, under wrk.

    .venv/bin/python -m bench.run [--duration 10] [--scale 1000000] [--queries Q1,Q2] ...

1. Seeds (or reuses) `treegate_bench_<trees>` on the PostgreSQL server with `treegate migrate`
   and `treegate seed`, and creates an operator API key for Q5.
2. Starts Treegate as the README serves it (`treegate serve --port P`) and the raw server
   (`bench/raw_server.py`), with the same settings and a pool of the same size, and checks that
   both give the same JSON for every document before loading them.
3. Loads each server in turn with wrk on 127.0.0.1 (`-t2 -c32`, `--duration` seconds per run
   after a warm-up), `--repeat` times, servers alternated; medians of req/s, p50 and p99, and
   the peak RSS sampled during the runs. Q5 (draws and transitions from 50 callers) runs on a
   copy of the database and its invariants are checked after each run.
4. Prints one table (stdout; progress goes to stderr) and writes the same data as JSON to
   `bench/results/<timestamp>.json`.

Every server and wrk process is stopped on exit, Ctrl-C included, and the copy is dropped.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import database, documents, invariants, machine, report
from bench.database import ROOT, SeededDatabase
from bench.load import (
    MUTATIONS_SCRIPT,
    POLL_SCRIPT,
    READS_SCRIPT,
    WrkResult,
    ensure_wrk,
    run_wrk,
    wrk_version,
)
from bench.report import Run
from bench.servers import (
    RssSampler,
    Server,
    base_environment,
    free_port,
    raw_command,
    treegate_command,
)

TITLES = {
    "Q1": "page of 100 trees + totalCount",
    "Q2": "one tree by id",
    "Q3": "counts by state, by lang+state",
    "Q4": "Q1 + rootMessage { text lang }",
    "Q5": "draw + abort transitions",
}
READ_QUERIES = ("Q1", "Q2", "Q3", "Q4")
SCALE_QUERIES = ("Q1", "Q2", "Q3")
OOASST2_TREES = 70_642
IDS_FOR_Q2 = 10_000
VOLATILE_KEYS = frozenset(
    {"messageTreeId", "sequence", "at", "wonPromptLotteryDate", "growingBefore", "growingAfter"}
)


class BenchError(Exception):
    """The benchmark cannot go on (the servers disagree, a server failed, ...)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench ARGS=...",
        description="Treegate against a hand-written ceiling server, under wrk.",
    )
    add = parser.add_argument
    add("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    add("--warmup", type=int, default=3, help="seconds of warm-up per server and query")
    add("--repeat", type=int, default=3, help="measured runs per server and query (median)")
    add("--threads", type=int, default=2, help="wrk threads (default 2)")
    add("--connections", type=int, default=32, help="wrk connections for Q1-Q4 (default 32)")
    add("--q5-connections", type=int, default=50, help="concurrent callers in Q5 (default 50)")
    add("--pool-size", type=int, default=32, help="database connections per server")
    add(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="both servers' log level; info (the default) writes an access log line per request",
    )
    add("--max-active-trees", type=int, default=10, help="the lottery's cap (default 10)")
    add("--q5-languages", type=int, default=8, help="languages Q5 draws for (the busiest)")
    add("--trees", type=int, default=OOASST2_TREES, help="trees in the main database")
    add("--seed", type=int, default=0, help="the seeder's random seed")
    add(
        "--scale",
        type=int,
        default=None,
        metavar="TREES",
        help="also run Q1-Q3 on a database of this many trees, e.g. 1000000",
    )
    add("--queries", default="Q1,Q2,Q3,Q4,Q5,POLL", help="which phases (default all)")
    add(
        "--pollers",
        default="1,20,200",
        help="POLL: concurrent pollers of one GET query, each count a run (default 1,20,200)",
    )
    add(
        "--show",
        type=Path,
        default=None,
        metavar="RESULTS_JSON",
        help="print the table of a saved run (bench/results/*.json) and exit",
    )
    add("--reseed", action="store_true", help="seed again even if a seeded database exists")
    add(
        "--server",
        default="postgresql://postgres@127.0.0.1:5432",
        help="the PostgreSQL server (trust auth; databases are created on it)",
    )
    add(
        "--treegate",
        type=Path,
        default=ROOT,
        metavar="DIR",
        help="the Treegate checkout to measure, with its own .venv (default: this one)",
    )
    add("--label", default="", help="a name for this run, kept in the results")
    add("--results-dir", type=Path, default=ROOT / "bench" / "results")
    add("--no-save", action="store_true", help="print the table only")
    args = parser.parse_args(argv)
    args.treegate = args.treegate.resolve()
    if not (args.treegate / ".venv" / "bin" / "treegate").exists():
        parser.error(f"{args.treegate}/.venv/bin/treegate is missing (run `make install` there)")
    args.queries = [q.strip().upper() for q in args.queries.split(",") if q.strip()]
    unknown = set(args.queries) - set(TITLES) - {"POLL"}
    if unknown:
        parser.error(f"unknown queries {sorted(unknown)}; choose from {', '.join(TITLES)}, POLL")
    for name, low, high in (
        ("duration", 1, 600),
        ("warmup", 0, 120),
        ("repeat", 1, 15),
        ("threads", 1, 64),
        ("connections", 1, 2000),
        ("q5_connections", 1, 2000),
        ("pool_size", 1, 500),
    ):
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}")
    return args


def post(url: str, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as error:
        return int(error.code), bytes(error.read())


def dashboard_counts_document() -> str:
    """The dashboard's first question (gql/dashboard.py), as the POLL phase asks it."""
    from gql.dashboard import DOCUMENTS

    return DOCUMENTS["counts"]


def normalise(value: Any) -> Any:
    """The answer with the values that legitimately differ between two writes blanked."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE_KEYS else normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def first_difference(a: Any, b: Any, path: str = "$") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{index}]")
    return f"{path}: {a!r} != {b!r}"


def revision(root: Path) -> str | None:
    """The checkout's commit, `+changes` if its application code differs from it (read-only)."""

    def git(*command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", str(root), *command],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

    head = git("rev-parse", "--short", "HEAD")
    if head.returncode != 0:
        return None
    code = ["gql", "schema", "resolvers", "db", "domain", "pyproject.toml", "uv.lock"]
    changed = git("diff", "--quiet", "HEAD", "--", *code).returncode != 0
    untracked = git("ls-files", "--others", "--exclude-standard", "--", *code).stdout.strip()
    return head.stdout.strip() + ("+changes" if changed or untracked else "")


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="treegate-bench-"))
        self.running: list[Server] = []
        self.started: list[Server] = []
        self.scratch_databases: list[str] = []
        self.queries: list[dict[str, Any]] = []
        self.databases: dict[str, dict[str, Any]] = {}
        self.polling: list[dict[str, Any]] = []
        self.wrk = ""
        self.key = ""

    # --- plumbing -----------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print(f"[bench {datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)

    def settings(self) -> dict[str, str]:
        """The TREEGATE_* settings both servers get (the raw server reads the same ones)."""
        return {
            "TREEGATE_DB_POOL_SIZE": str(self.args.pool_size),
            "TREEGATE_DB_MAX_OVERFLOW": "0",
            "TREEGATE_DB_POOL_TIMEOUT": "5",
            "TREEGATE_DB_STATEMENT_TIMEOUT_MS": "15000",
            "TREEGATE_MAX_ACTIVE_TREES": str(self.args.max_active_trees),
            "TREEGATE_LOG_LEVEL": self.args.log_level,
        }

    def environment(self, url: str) -> dict[str, str]:
        return {**base_environment(), **self.settings(), "TREEGATE_DATABASE_URL": url}

    def start_servers(self, url: str, tag: str) -> tuple[Server, Server]:
        env = self.environment(url)
        tg_port, raw_port = free_port(), free_port()
        treegate = Server(
            "treegate",
            treegate_command(tg_port, self.args.treegate),
            env,
            self.work,
            self.work / f"treegate-{tag}.log",
            tg_port,
        )
        raw = Server(
            "raw",
            raw_command(raw_port, self.args.log_level),
            {**env, "PYTHONPATH": str(ROOT)},
            self.work,
            self.work / f"raw-{tag}.log",
            raw_port,
        )
        for server in (treegate, raw):
            self.running.append(server)
            self.started.append(server)
            server.start()
        self.log(f"serving {url.rsplit('/', 1)[-1]}: treegate on :{tg_port}, raw on :{raw_port}")
        return treegate, raw

    def stop_servers(self) -> None:
        while self.running:
            self.running.pop().stop()

    def write(self, name: str, text: str) -> str:
        path = self.work / name
        path.write_text(text)
        return str(path)

    def cleanup(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.stop_servers()
        for name in self.scratch_databases:
            try:
                database.drop(self.args.server, name)
            except Exception as exc:  # cleanup goes on whatever failed
                self.log(f"could not drop {name}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)

    # --- checking the two servers agree -------------------------------------------------------

    def ask(
        self, query: str, server: Server, body: bytes, headers: Mapping[str, str] | None
    ) -> tuple[bytes, Any]:
        """One request; its bytes and parsed JSON. Raises unless it is a 200 without errors."""
        status, answer = post(server.url, body, headers)
        parsed = json.loads(answer)
        if status != 200 or parsed.get("errors"):
            raise BenchError(f"{query}: {server.name} answered {status}: {answer[:600]!r}")
        return answer, parsed

    def compare(
        self,
        query: str,
        servers: tuple[Server, Server],
        bodies: Sequence[bytes],
        headers: Mapping[str, str] | None = None,
    ) -> bool:
        """Send each body to both servers; raise unless the parsed answers are equal.
        True if every answer was also byte for byte the same."""
        identical = True
        for body in bodies:
            (tg_bytes, tg_json), (raw_bytes, raw_json) = (
                self.ask(query, server, body, headers) for server in servers
            )
            if tg_json != raw_json:
                raise BenchError(
                    f"{query}: the raw server's answer differs from Treegate's at "
                    f"{first_difference(tg_json, raw_json)}\n  body: {body[:300]!r}"
                )
            identical = identical and tg_bytes == raw_bytes
        return identical

    # --- measuring ----------------------------------------------------------------------------

    def measure(
        self,
        query: str,
        servers: tuple[Server, Server],
        script: Path,
        prepare: Callable[[Server], list[str]],
        connections: int,
        finish: Callable[[Server, WrkResult], dict[str, Any]] | None = None,
    ) -> dict[str, list[Run]]:
        """Warm-up, then `--repeat` runs per server, alternating which goes first."""
        args = self.args
        runs: dict[str, list[Run]] = {s.name: [] for s in servers}

        def wrk(server: Server, seconds: int) -> WrkResult:
            return run_wrk(
                self.wrk,
                server.url,
                script,
                prepare(server),
                threads=args.threads,
                connections=connections,
                seconds=seconds,
            )

        if args.warmup:
            for server in servers:
                wrk(server, args.warmup)
        for rep in range(args.repeat):
            for server in servers if rep % 2 == 0 else servers[::-1]:
                with RssSampler(server) as sampler:
                    result = wrk(server, args.duration)
                extra = finish(server, result) if finish is not None else {}
                run = Run(
                    result.rps,
                    result.p50_ms,
                    result.p99_ms,
                    sampler.peak_kib / 1024,
                    result.errors,
                    extra,
                )
                runs[server.name].append(run)
                self.log(
                    f"{query} {server.name:<8} run {rep + 1}/{args.repeat}: {run.rps:9.1f} req/s, "
                    f"p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                    f"RSS {run.peak_rss_mib:.1f} MiB"
                    + (f", {run.errors} errors" if run.errors else "")
                    + (f", {extra['summary']}" if "summary" in extra else "")
                )
        return runs

    def entry(
        self, query: str, trees: int, verification: dict[str, Any], runs: dict[str, list[Run]]
    ) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "id": query,
            "title": TITLES[query],
            "trees": trees,
            "verification": verification,
            "servers": {name: report.summarize(found) for name, found in runs.items()},
        }
        entry["ratio"] = report.ratio(entry)
        self.queries.append(entry)
        return entry

    # --- the phases ---------------------------------------------------------------------------

    def seeded(self, trees: int) -> SeededDatabase:
        db = database.ensure_seeded(
            self.args.server,
            trees,
            self.args.seed,
            base_environment(),
            self.log,
            root=self.args.treegate,
            reseed=self.args.reseed,
        )
        self.databases[str(trees)] = {
            "name": db.name,
            "trees": db.trees,
            "messages": db.messages,
            "users": db.users,
            "seed": db.seed,
            "reused": db.reused,
            "seeded_at": db.seeded_at,
            "seed_seconds": round(db.seed_seconds, 1),
            "vacuum_seconds": round(db.vacuum_seconds, 1),
            "seeder_changed": db.seeder_changed,
        }
        return db

    def read_phase(self, db: SeededDatabase, queries: Sequence[str]) -> None:
        ids = database.sample_tree_ids(db.url, IDS_FOR_Q2)
        ids_file = self.write(f"ids-{db.trees}.txt", "\n".join(ids) + "\n")
        servers = self.start_servers(db.url, str(db.trees))
        try:
            for query in queries:
                if query == "Q2":
                    template = json.dumps(documents.request_body("Q2", {"id": "@ID@"}))
                    body_file = self.write("q2.json", template)
                    checks = [*ids[:20], str(uuid.uuid4())]  # and one that does not exist
                    bodies = [template.replace("@ID@", i).encode() for i in checks]
                    script_args = [body_file, ids_file]
                else:
                    body = json.dumps(documents.request_body(query))
                    body_file = self.write(f"{query.lower()}.json", body)
                    bodies = [body.encode()]
                    script_args = [body_file]
                identical = self.compare(query, servers, bodies)
                self.log(
                    f"{query}: both servers agree ({'same bytes' if identical else 'same JSON'})"
                )

                def prepare(_server: Server, fixed: list[str] = script_args) -> list[str]:
                    return fixed

                runs = self.measure(query, servers, READS_SCRIPT, prepare, self.args.connections)
                verification = {
                    "equal": True,
                    "bytes_identical": identical,
                    "requests": len(bodies),
                }
                self.entry(query, db.trees, verification, runs)
        finally:
            self.stop_servers()

    def q5_phase(self, db: SeededDatabase) -> None:
        name = f"{db.name}_q5"
        self.scratch_databases.append(name)
        self.log(f"Q5: copying {db.name} to {name}")
        url = database.clone(self.args.server, db.name, name)
        cap = self.args.max_active_trees
        langs = database.busiest_languages(url, self.args.q5_languages)
        draw_template = json.dumps(documents.request_body("Q5_DRAW", {"lang": "@LANG@"}))
        abort_template = json.dumps(documents.request_body("Q5_ABORT", {"id": "@ID@"}))
        draw_file = self.write("q5_draw.json", draw_template)
        abort_file = self.write("q5_abort.json", abort_template)
        headers = {"Authorization": f"Bearer {self.key}"}

        def draw(lang: str) -> bytes:
            return draw_template.replace("@LANG@", lang).encode()

        def abort(tree: str) -> bytes:
            return abort_template.replace("@ID@", tree).encode()

        servers = self.start_servers(url, "q5")
        try:
            # Answers that change nothing must be the same on both, byte for byte: a tree that
            # does not exist, one in another state, a draw without candidates, one at the cap.
            ready = database.sample_tree_ids(url, 1, "ready_for_export")
            fixed = [abort(str(uuid.uuid4())), abort(ready[0]), draw("zz")]
            if database.growing_count(url, langs[0]) >= cap:
                fixed.append(draw(langs[0]))
            identical = self.compare("Q5", servers, fixed, headers)
            # Answers that change something: equal but for ids, dates, sequences and counts.
            database.limit_growing(url, langs, cap // 2)
            applied: list[list[Any]] = []
            for server in servers:
                tree = database.growing_ids(url, langs[:1])[0]
                answers = [
                    self.ask("Q5", server, body, headers)[1]
                    for body in (draw(langs[0]), abort(tree))
                ]
                applied.append([normalise(answer) for answer in answers])
            if applied[0] != applied[1]:
                raise BenchError(
                    "Q5: the raw server's writes answer differently: "
                    + first_difference(applied[0], applied[1])
                )
            self.log(f"Q5: both servers agree; drawing for {', '.join(langs)} (cap {cap})")
            snapshots: dict[str, database.Snapshot] = {}

            def prepare(server: Server) -> list[str]:
                database.wait_until_idle(url, name)
                database.limit_growing(url, langs, cap // 2)
                snapshots[server.name] = database.snapshot(url)
                ids_file = self.write("q5_growing.txt", "\n".join(database.growing_ids(url, langs)))
                return [
                    draw_file,
                    abort_file,
                    ids_file,
                    ",".join(langs),
                    self.key,
                    str(self.args.threads),
                ]

            def finish(server: Server, result: WrkResult) -> dict[str, Any]:
                if not database.wait_until_idle(url, name):
                    self.log("Q5: the database was still busy 15 s after wrk ended")
                before = snapshots[server.name]
                after = database.snapshot(url)
                rows = database.log_rows_after(url, before.sequence)
                checked = invariants.check(before, after, rows, cap)
                counters = result.counters
                acknowledged = counters.get("drawn", 0) + counters.get("applied", 0)
                # wrk drops the requests still in flight when its time is up; those may commit.
                if result.requests and not (
                    acknowledged <= len(rows) <= acknowledged + self.args.q5_connections
                ):
                    checked.violation(
                        f"{len(rows)} log rows for {acknowledged} changes acknowledged to callers"
                    )
                draws_per_s = checked.draws / result.seconds if result.seconds else 0.0
                return {
                    "draws_per_s": draws_per_s,
                    "log_rows": checked.log_rows,
                    "draws": checked.draws,
                    "violations": checked.violations,
                    "details": checked.details,
                    "counters": counters,
                    "summary": f"{checked.draws} drawn ({draws_per_s:.1f}/s), "
                    f"{checked.other_changes} aborted, {checked.violations} violations",
                }

            runs = self.measure(
                "Q5", servers, MUTATIONS_SCRIPT, prepare, self.args.q5_connections, finish
            )
            verification = {"equal": True, "bytes_identical": identical, "requests": len(fixed)}
            entry = self.entry("Q5", db.trees, verification, runs)
            entry["languages"] = langs
            entry["q5"] = {
                server: {
                    "draws_per_s": round(
                        statistics.median(r.extra["draws_per_s"] for r in found), 1
                    ),
                    "log_rows": sum(r.extra["log_rows"] for r in found),
                    "violations": sum(r.extra["violations"] for r in found),
                    "details": [d for r in found for d in r.extra["details"]][:10],
                    "counters": [r.extra["counters"] for r in found],
                }
                for server, found in runs.items()
            }
        finally:
            self.stop_servers()
        database.drop(self.args.server, name)
        self.scratch_databases.remove(name)

    def poll_phase(self, db: SeededDatabase) -> None:
        """Many pollers asking the dashboard's question over GET with If-None-Match: the answers
        per second grow with the pollers, the executions and database transactions should not."""
        pollers = [int(n) for n in self.args.pollers.split(",") if n.strip()]
        treegate, _raw = self.start_servers(db.url, f"{db.trees}-poll")
        try:
            query = urllib.parse.urlencode({"query": dashboard_counts_document()})
            url = f"{treegate.url}?{query}"
            with urllib.request.urlopen(url, timeout=30) as response:
                etag = response.headers["ETag"]
            if not etag:
                raise BenchError("the GET answer has no ETag")
            for n in pollers:
                before = self.poll_counters(treegate, db.url)
                started = time.monotonic()
                result = run_wrk(
                    self.wrk,
                    url,
                    POLL_SCRIPT,
                    [etag],
                    threads=min(self.args.threads, n),
                    connections=n,
                    seconds=self.args.duration,
                )
                seconds = time.monotonic() - started
                after = self.poll_counters(treegate, db.url)
                delta = {k: after[k] - before[k] for k in after}
                entry = {
                    "pollers": n,
                    "rps": round(result.rps, 1),
                    "p50_ms": round(result.p50_ms, 2),
                    "p99_ms": round(result.p99_ms, 2),
                    "errors": result.errors,
                    "executions_per_s": round(delta["executions"] / seconds, 2),
                    "db_transactions_per_s": round(delta["transactions"] / seconds, 2),
                    # Both counted by the server (wrk leaves out requests in flight at the end).
                    "not_modified_share": round(
                        delta["not_modified"] / max(delta["answered"], 1), 4
                    ),
                }
                self.polling.append(entry)
                self.log(
                    f"POLL {n:>4} pollers: {entry['rps']:,.0f} req/s, "
                    f"{entry['executions_per_s']} executions/s, "
                    f"{entry['db_transactions_per_s']} database transactions/s, "
                    f"{entry['not_modified_share']:.1%} answered 304"
                )
        finally:
            self.stop_servers()

    def poll_counters(self, treegate: Server, url: str) -> dict[str, float]:
        with urllib.request.urlopen(treegate.url.replace("/graphql", "/metrics"), timeout=30) as r:
            text = r.read().decode()

        def sample(line_start: str) -> float:
            for line in text.splitlines():
                if line.startswith(line_start):
                    return float(line.rsplit(" ", 1)[1])
            return 0.0

        transactions = database.fetch(
            url,
            "SELECT xact_commit + xact_rollback FROM pg_stat_database "
            "WHERE datname = current_database()",
        )[0][0]
        return {
            "executions": sample('treegate_cache_requests_total{cache="responses",result="miss"}'),
            "not_modified": sample("treegate_not_modified_total"),
            "answered": sample('treegate_requests_total{operation="DashboardCounts",outcome="ok"}'),
            "transactions": float(transactions),
        }

    def create_key(self, db: SeededDatabase) -> str:
        output = database.treegate(
            ["keys", "create", "--name", "bench", "--role", "operator", "--replace"],
            database.treegate_env(db.url, base_environment()),
            timeout=120,
            root=self.args.treegate,
        )
        found = re.search(r"^(tg_\S+)\s*$", output, re.MULTILINE)
        if found is None:
            raise BenchError(f"no key in the output of treegate keys create: {output!r}")
        return found.group(1)

    def run(self) -> dict[str, Any]:
        args = self.args
        started = datetime.now(UTC)
        self.wrk = ensure_wrk(self.log)
        db = self.seeded(args.trees)
        reads = [q for q in args.queries if q in READ_QUERIES]
        if reads:
            self.read_phase(db, reads)
        if "Q5" in args.queries:
            self.key = self.create_key(db)
            self.q5_phase(db)
        if "POLL" in args.queries:
            self.poll_phase(db)
        if args.scale and args.scale != args.trees:
            large = self.seeded(args.scale)
            scale_reads = [q for q in args.queries if q in SCALE_QUERIES]
            if scale_reads:
                self.read_phase(large, scale_reads)
        result: dict[str, Any] = {
            "date": f"{started:%Y-%m-%d %H:%M} UTC",
            "label": args.label,
            "treegate": {"root": str(args.treegate), "revision": revision(args.treegate)},
            "machine": machine.describe(),
            "versions": machine.versions(database.server_version(db.url), wrk_version(self.wrk)),
            "config": {
                "trees": args.trees,
                "seed": args.seed,
                "scale": args.scale,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "repeat": args.repeat,
                "threads": args.threads,
                "connections": args.connections,
                "q5_connections": args.q5_connections,
                "pool_size": args.pool_size,
                "log_level": args.log_level,
                "max_active_trees": args.max_active_trees,
                "settings": self.settings(),
                "treegate_command": "treegate serve --port P",
                "raw_command": " ".join(raw_command(0, args.log_level)[1:]).replace(
                    "--port 0", "--port P"
                ),
            },
            "databases": self.databases,
            "polling": self.polling,
            "queries": self.queries,
        }
        result["targets"] = report.targets(result)
        return result


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.show is not None:
        print(report.render(json.loads(args.show.read_text())))
        return 0

    def interrupt(signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)
    bench = Bench(args)
    started = time.monotonic()
    try:
        result = bench.run()
    except KeyboardInterrupt:
        print("bench: interrupted; servers stopped", file=sys.stderr)
        return 130
    except (BenchError, RuntimeError) as exc:
        print(f"bench: {exc}", file=sys.stderr)
        for server in bench.started[-2:]:
            print(f"--- {server.name} log (last lines) ---\n{server.log_tail()}", file=sys.stderr)
        return 1
    finally:
        bench.cleanup()
    print(report.render(result))
    if not args.no_save:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        path = report.save(result, args.results_dir, stamp)
        print(f"\nresults: {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    print(f"(took {time.monotonic() - started:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
