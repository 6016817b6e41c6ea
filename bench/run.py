"""`make bench`: Treegate against PostGraphile 5 and a hand-written ceiling server, under wrk.

    .venv/bin/python -m bench.run [--duration 10] [--scale 1000000] [--queries Q1,Q2] ...

1. Seeds (or reuses) `treegate_bench_<trees>` on the PostgreSQL server with `treegate migrate`
   and `treegate seed`, and creates an operator API key for Q5.
2. Per query, starts the servers that answer it, each as it would be deployed:
   - `treegate`: `treegate serve --port P` at the product's defaults (no `TREEGATE_*` setting but
     `TREEGATE_DATABASE_URL`), and `treegate-nocache`, the same with its count and response
     caches off; for Q2 also `treegate-overflow10`, caches off with the former pool default
     `TREEGATE_DB_MAX_OVERFLOW=10` (`--no-overflow-row` leaves it out); for Q6 also
     `treegate-uncompiled`, caches off with `TREEGATE_COMPILED_READS=false`, to show what the
     compiled lane does for it (`--no-uncompiled-row` leaves it out); for every read query
     `treegate-tracing`, the defaults with tracing on (`TREEGATE_TRACING=on`), its spans exported
     by OTLP over HTTP to a local receiver that takes them and answers 200
     (`bench/otlp_sink.py`), so that exporting costs what it costs (`--no-tracing-row` leaves
     it out); after its runs the receiver must have had exports;
   - `postgraphile` (Q1, Q2, Q4, Q6): PostGraphile 5, amber preset, from `bench/postgraphile/`
     (its pinned npm packages, Node.js 22 included), with its default pool of 10 connections;
   - `raw-10`, `raw-32`: the ceiling (`bench/raw_server.py`) with pools of 10 and 32
     connections; every ratio uses the faster of the two for that query.
   Every answer is checked against Treegate's before any load: the raw server's JSON must be
   Treegate's, PostGraphile's the same trees and values once mapped onto Treegate's names.
3. Loads each server in turn with wrk on 127.0.0.1 (`-t2 -c32`, `--duration` seconds per run
   after a warm-up), `--repeat` times, servers alternated; medians of req/s, p50 and p99, and
   the peak RSS sampled during the runs. After a query's runs, Treegate's
   `treegate_compiled_fallbacks_total` must not have grown (the documents must stay on the
   compiled lane). Q5 (draws and transitions from 50 callers) runs on a copy of the database,
   Treegate against both raw pools, and its invariants are checked after each run. POLL loads
   Treegate alone.
4. Prints one table (stdout; progress goes to stderr) and writes the same data as JSON to
   `bench/results/<timestamp>.json`.

Servers that would together hold more connections than PostgreSQL's `max_connections` leaves
free are not run side by side: a query's servers are then split into groups run one after the
other (the table says so). Every server and wrk process is stopped on exit, Ctrl-C included,
and the copy is dropped.
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
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from bench import database, documents, invariants, machine, report
from bench.agreement import Disagreement, check_postgraphile, first_difference, normalise
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
from bench.report import NOCACHE, OVERFLOW, POSTGRAPHILE, TRACING, TREEGATE, UNCOMPILED, Run
from bench.servers import (
    NODE,
    POSTGRAPHILE_CLI,
    POSTGRAPHILE_CONFIG,
    POSTGRAPHILE_DIR,
    POSTGRAPHILE_POOL_SIZE,
    READY_QUERY,
    RssSampler,
    Server,
    base_environment,
    free_port,
    otlp_sink_command,
    postgraphile_command,
    postgraphile_environment,
    postgraphile_versions,
    raw_command,
    treegate_command,
    treegate_settings,
)

TITLES = {
    "Q1": "page of 100 trees + totalCount",
    "Q2": "one tree by id",
    "Q3": "counts by state, by lang+state",
    "Q4": "Q1 + rootMessage { text lang }",
    "Q5": "draw + abort transitions",
    "Q6": "one tree's messages (10)",
}
READ_QUERIES = ("Q1", "Q2", "Q3", "Q4", "Q6")
SCALE_QUERIES = ("Q1", "Q2", "Q3")
PEER_QUERIES = frozenset(documents.POSTGRAPHILE_FILES)
OOASST2_TREES = 70_642
IDS_FOR_Q2 = 10_000
IDS_FOR_Q6 = 1_000
Q6_TREE_SIZE = 10
"""Q6 asks for trees of exactly this many messages, none deleted (the seed has about 3,000)."""
ID_QUERIES = frozenset({"Q2", "Q6"})
"""Read queries whose id is drawn per request from a file of ids."""
NO_CACHES = {"TREEGATE_COUNT_CACHE_S": "0", "TREEGATE_RESPONSE_CACHE_S": "0"}
FORMER_OVERFLOW = {"TREEGATE_DB_MAX_OVERFLOW": "10", **NO_CACHES}
FULL_PATH = {"TREEGATE_COMPILED_READS": "false", **NO_CACHES}
RAW_POOL_TIMEOUT_S = "5"
RAW_STATEMENT_TIMEOUT_MS = "15000"
CONNECTION_MARGIN = 5
"""Connections left free for the harness (and anything else) when servers are grouped."""
FALLBACKS = "treegate_compiled_fallbacks_total"
BUSY_SHARE = 0.25
"""Above this share of the machine's CPU busy before a measurement, the run notes it (other
work on the machine takes CPU from the servers under test)."""


class BenchError(Exception):
    """The benchmark cannot go on (the servers disagree, a server failed, ...)."""


def _int_list(text: str) -> list[int]:
    return [int(n) for n in text.split(",") if n.strip()]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make bench ARGS=...",
        description="Treegate against PostGraphile 5 and a hand-written ceiling, under wrk.",
    )
    add = parser.add_argument
    add("--duration", type=int, default=10, help="seconds per measured run (default 10)")
    add("--warmup", type=int, default=3, help="seconds of warm-up per server and query")
    add("--repeat", type=int, default=3, help="measured runs per server and query (median)")
    add("--threads", type=int, default=2, help="wrk threads (default 2)")
    add("--connections", type=int, default=32, help="wrk connections for Q1-Q4 (default 32)")
    add("--q5-connections", type=int, default=50, help="concurrent callers in Q5 (default 50)")
    add(
        "--raw-pools",
        default="10,32",
        help="the raw server's pool sizes, one server each (default 10,32; ratios use the best)",
    )
    add(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the raw server's uvicorn log level; info (the default, as Treegate's default) "
        "writes an access log line per request",
    )
    add(
        "--overflow-row",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Q2: also run Treegate with the former TREEGATE_DB_MAX_OVERFLOW=10, caches off",
    )
    add(
        "--uncompiled-row",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Q6: also run Treegate with TREEGATE_COMPILED_READS=false, caches off",
    )
    add(
        "--tracing-row",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="Q1-Q4, Q6: also run Treegate with tracing on, exporting to a local OTLP receiver",
    )
    add(
        "--postgraphile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run PostGraphile 5 as the peer for Q1, Q2, Q4, Q6 (default on)",
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
    add("--queries", default="Q1,Q2,Q3,Q4,Q6,Q5,POLL", help="which phases (default all)")
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
    if args.show is not None:
        return args
    args.treegate = args.treegate.resolve()
    if not (args.treegate / ".venv" / "bin" / "treegate").exists():
        parser.error(f"{args.treegate}/.venv/bin/treegate is missing (run `make install` there)")
    args.queries = [q.strip().upper() for q in args.queries.split(",") if q.strip()]
    unknown = set(args.queries) - set(TITLES) - {"POLL"}
    if unknown:
        parser.error(f"unknown queries {sorted(unknown)}; choose from {', '.join(TITLES)}, POLL")
    try:
        args.raw_pools = sorted(set(_int_list(args.raw_pools)))
        args.pollers = _int_list(args.pollers)
    except ValueError:
        parser.error("--raw-pools and --pollers take comma-separated numbers")
    if not args.raw_pools or not all(1 <= n <= 500 for n in args.raw_pools):
        parser.error("--raw-pools: one or more pool sizes between 1 and 500")
    if not args.pollers or not all(1 <= n <= 2000 for n in args.pollers):
        parser.error("--pollers: one or more numbers between 1 and 2000")
    for name, low, high in (
        ("duration", 1, 600),
        ("warmup", 0, 120),
        ("repeat", 1, 15),
        ("threads", 1, 64),
        ("connections", 1, 2000),
        ("q5_connections", 1, 2000),
        ("max_active_trees", 2, 1000),
    ):
        if not low <= getattr(args, name) <= high:
            parser.error(f"--{name.replace('_', '-')} must be between {low} and {high}")
    peer_needed = args.postgraphile and PEER_QUERIES & set(args.queries)
    if peer_needed and not (NODE.exists() and POSTGRAPHILE_CLI.exists()):
        parser.error(
            "PostGraphile is not installed: `make bench` installs it "
            "(npm ci --prefix bench/postgraphile), or pass --no-postgraphile"
        )
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


def fallback_samples(metrics: str) -> dict[str, float] | None:
    """`treegate_compiled_fallbacks_total` by reason from a Prometheus text, or None when the
    server does not have the metric at all."""
    if "treegate_compiled_fallbacks" not in metrics:
        return None
    found: dict[str, float] = {}
    for line in metrics.splitlines():
        if not line.startswith(FALLBACKS):
            continue
        rest = line[len(FALLBACKS) :]
        if not rest.startswith(("{", " ")):
            continue
        labels, _, value = rest.rpartition(" ")
        reason = re.search(r'reason="((?:[^"\\]|\\.)*)"', labels)
        key = reason.group(1) if reason else labels.strip() or "-"
        found[key] = found.get(key, 0.0) + float(value)
    return found


@dataclass(frozen=True, slots=True)
class Spec:
    """One server configuration: how it is started and what it may hold."""

    name: str
    kind: str
    """treegate, postgraphile or raw."""
    given: dict[str, str]
    """The settings it gets on top of the database's URL (recorded as they are)."""
    connections: int
    """The most database connections it may open."""
    dialect: str = "treegate"
    """Whose documents it answers: treegate (Treegate and the raw server) or postgraphile."""


@dataclass(slots=True)
class Agreement:
    """Treegate's answers to a query's checks, once seen, for the servers started later."""

    bodies: dict[str, list[bytes]]
    reference: list[tuple[bytes, Any]] = field(default_factory=list)


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = Path(tempfile.mkdtemp(prefix="treegate-bench-"))
        self.running: list[Server] = []
        self.group: list[Server] = []
        self.scratch_databases: list[str] = []
        self.queries: list[dict[str, Any]] = []
        self.databases: dict[str, dict[str, Any]] = {}
        self.polling: list[dict[str, Any]] = []
        self.servers: dict[str, dict[str, Any]] = {}
        self.specs: dict[str, Spec] = {}
        self.wrk = ""
        self.key = ""
        self.peer_versions: dict[str, str] = {}
        self.warned_no_fallback_metric = False
        self.busy: list[dict[str, Any]] = []
        self.sink: Server | None = None

    # --- plumbing -----------------------------------------------------------------------------

    def log(self, text: str) -> None:
        print(f"[bench {datetime.now():%H:%M:%S}] {text}", file=sys.stderr, flush=True)

    def write(self, name: str, text: str) -> str:
        path = self.work / name
        path.write_text(text)
        return str(path)

    def check_quiet(self, where: str) -> None:
        """Note (and record) when something else keeps the machine busy before a measurement."""
        share = machine.cpu_busy(1.0)
        if share <= BUSY_SHARE:
            return
        others = machine.busy_processes()
        self.busy.append({"before": where, "cpu_busy": round(share, 2), "processes": others})
        self.log(
            f"warning: the machine is {share:.0%} busy before {where} (other work skews the "
            "figures): " + "; ".join(others)
        )

    def cleanup(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        self.stop_servers()
        if self.sink is not None:
            self.sink.stop()
        for name in self.scratch_databases:
            try:
                database.drop(self.args.server, name)
            except Exception as exc:  # cleanup goes on whatever failed
                self.log(f"could not drop {name}: {exc}")
        shutil.rmtree(self.work, ignore_errors=True)

    # --- the servers --------------------------------------------------------------------------

    def treegate_spec(self, name: str, given: Mapping[str, str], url: str) -> Spec:
        """A Treegate configuration; its effective settings are read from the checkout."""
        if name in self.specs and self.specs[name].given == dict(given):
            return self.specs[name]
        env = {**base_environment(), **given, "TREEGATE_DATABASE_URL": url}
        settings = treegate_settings(self.args.treegate, env, self.work)
        workers = int(str(settings.get("workers", 1)))
        pool = int(str(settings.get("db_pool_size", 10)))
        overflow = int(str(settings.get("db_max_overflow", 0)))
        spec = Spec(name, "treegate", dict(given), workers * (pool + overflow + 1))
        self.specs[name] = spec
        count_cache, response_cache = (
            settings.get("count_cache_s"),
            settings.get("response_cache_s"),
        )
        self.servers[name] = {
            "kind": "treegate",
            "command": " ".join(treegate_command(0, self.args.treegate)).replace(
                "--port 0", "--port P"
            ),
            "env": {"TREEGATE_DATABASE_URL": "<the database>", **given},
            "settings": settings,
            "max_connections": spec.connections,
            "summary": f"treegate serve --port P, {workers} worker(s); pool {pool} + overflow "
            f"{overflow}; count cache {count_cache} s, response cache {response_cache} s; "
            f"log level {settings.get('log_level')}",
        }
        return spec

    def postgraphile_spec(self) -> Spec:
        if POSTGRAPHILE in self.specs:
            return self.specs[POSTGRAPHILE]
        self.peer_versions = postgraphile_versions()
        # Its pg pool, and one more for the LISTEN client its subscriber may open.
        spec = Spec(POSTGRAPHILE, "postgraphile", {}, POSTGRAPHILE_POOL_SIZE + 1, "postgraphile")
        self.specs[POSTGRAPHILE] = spec
        env = postgraphile_environment("<the database>", 0)
        env["PORT"] = "P"
        versions = self.peer_versions
        self.servers[POSTGRAPHILE] = {
            "kind": "postgraphile",
            "command": " ".join(str(p) for p in postgraphile_command()),
            "cwd": str(POSTGRAPHILE_DIR),
            "config": POSTGRAPHILE_CONFIG.name,
            "env": env,
            "pool_size": POSTGRAPHILE_POOL_SIZE,
            "versions": versions,
            "max_connections": spec.connections,
            "summary": f"PostGraphile {versions.get('postgraphile')} CLI, amber preset, Node.js "
            f"{versions.get('node')}; pg pool {POSTGRAPHILE_POOL_SIZE} (its default); "
            "no GraphiQL, watch or explain",
        }
        return spec

    def raw_spec(self, pool: int) -> Spec:
        name = f"raw-{pool}"
        if name in self.specs:
            return self.specs[name]
        given = {
            "TREEGATE_DB_POOL_SIZE": str(pool),
            "TREEGATE_DB_POOL_TIMEOUT": RAW_POOL_TIMEOUT_S,
            "TREEGATE_DB_STATEMENT_TIMEOUT_MS": RAW_STATEMENT_TIMEOUT_MS,
            "TREEGATE_MAX_ACTIVE_TREES": str(self.args.max_active_trees),
        }
        spec = Spec(name, "raw", given, pool)
        self.specs[name] = spec
        command = " ".join(raw_command(0, self.args.log_level)[1:]).replace("--port 0", "--port P")
        self.servers[name] = {
            "kind": "raw",
            "command": command,
            "env": {"TREEGATE_DATABASE_URL": "<the database>", **given},
            "pool_size": pool,
            "max_connections": pool,
            "summary": f"bench/raw_server.py under uvicorn (uvloop, httptools, log level "
            f"{self.args.log_level}); asyncpg pool {pool}, opened at start",
        }
        return spec

    def read_specs(self, query: str, url: str) -> list[Spec]:
        specs = [self.treegate_spec(TREEGATE, {}, url), self.treegate_spec(NOCACHE, NO_CACHES, url)]
        if self.args.postgraphile and query in PEER_QUERIES:
            specs.append(self.postgraphile_spec())
        specs += [self.raw_spec(pool) for pool in self.args.raw_pools]
        if query == "Q2" and self.args.overflow_row:
            specs.append(self.treegate_spec(OVERFLOW, FORMER_OVERFLOW, url))
        if query == "Q6" and self.args.uncompiled_row:
            specs.append(self.treegate_spec(UNCOMPILED, FULL_PATH, url))
        if self.args.tracing_row:
            specs.append(self.treegate_spec(TRACING, self.tracing_settings(), url))
        return specs

    def tracing_settings(self) -> dict[str, str]:
        """`treegate-tracing`'s settings: tracing on, exporting to the local OTLP receiver
        (started on first use, stopped at the end)."""
        if self.sink is None:
            port = free_port()
            sink = Server(
                "otlp-sink",
                otlp_sink_command(port),
                {**base_environment(), "PYTHONPATH": str(ROOT)},
                ROOT,
                self.work / "otlp-sink.log",
                port,
            )
            sink.start()
            self.sink = sink
        return {
            "TREEGATE_TRACING": "on",
            "OTEL_EXPORTER_OTLP_ENDPOINT": self.sink.base_url,
            "OTEL_SERVICE_NAME": TRACING,
        }

    def sink_exports(self) -> int:
        """How many exports the OTLP receiver has taken so far."""
        if self.sink is None:
            return 0
        with urllib.request.urlopen(self.sink.base_url + "/stats", timeout=30) as response:
            return int(json.loads(response.read())["exports"])

    def q5_treegate_spec(self, url: str) -> Spec:
        """Treegate at its defaults; the cap only when the harness's differs from Treegate's."""
        spec = self.treegate_spec(TREEGATE, {}, url)
        default_cap = self.servers[TREEGATE]["settings"].get("max_active_trees")
        if default_cap == self.args.max_active_trees:
            return spec
        given = {"TREEGATE_MAX_ACTIVE_TREES": str(self.args.max_active_trees)}
        return Spec(TREEGATE, "treegate", given, spec.connections)

    def connection_budget(self, url: str) -> int:
        rows = database.fetch(
            url,
            "SELECT current_setting('max_connections')::int, "
            "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')",
        )
        limit, in_use = int(rows[0][0]), int(rows[0][1])
        return limit - in_use - CONNECTION_MARGIN

    def grouped(self, specs: Sequence[Spec], url: str) -> list[list[Spec]]:
        """The specs in groups that may run side by side (first fit, in order)."""
        budget = self.connection_budget(url)
        groups: list[list[Spec]] = []
        for spec in specs:
            if spec.connections > budget:
                self.log(
                    f"warning: {spec.name} may open {spec.connections} connections, more than the "
                    f"{budget} PostgreSQL leaves free"
                )
            for group in groups:
                if sum(s.connections for s in group) + spec.connections <= budget:
                    group.append(spec)
                    break
            else:
                groups.append([spec])
        if len(groups) > 1:
            self.log(
                f"{budget} connections free: running "
                + " then ".join("[" + ", ".join(s.name for s in g) + "]" for g in groups)
            )
        return groups

    def launch(self, spec: Spec, url: str, tag: str) -> Server:
        port = free_port()
        log = self.work / f"{spec.name}-{tag}.log"
        base = base_environment()
        if spec.kind == "treegate":
            env = {**base, **spec.given, "TREEGATE_DATABASE_URL": url}
            command = treegate_command(port, self.args.treegate)
            server = Server(spec.name, command, env, self.work, log, port)
        elif spec.kind == "postgraphile":
            # Nothing inherited may turn on debug logging or change Node's flags.
            for name in [k for k in base if k in ("DEBUG", "NODE_OPTIONS") or "GRAPHILE" in k]:
                del base[name]
            env = {**base, **postgraphile_environment(url, port)}
            server = Server(
                spec.name,
                postgraphile_command(),
                env,
                POSTGRAPHILE_DIR,
                log,
                port,
                ready_path="/graphql",
                ready_body=READY_QUERY,
            )
        else:
            env = {**base, **spec.given, "TREEGATE_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
            server = Server(
                spec.name, raw_command(port, self.args.log_level), env, self.work, log, port
            )
        self.running.append(server)
        self.group.append(server)
        server.start()
        return server

    def start_group(self, specs: Sequence[Spec], url: str, tag: str) -> list[Server]:
        self.group = []
        servers = [self.launch(spec, url, tag) for spec in specs]
        where = ", ".join(f"{s.name} on :{s.port}" for s in servers)
        self.log(f"serving {url.rsplit('/', 1)[-1]}: {where}")
        return servers

    def stop_servers(self) -> None:
        while self.running:
            self.running.pop().stop()

    # --- checking the servers agree -----------------------------------------------------------

    def ask(
        self, query: str, server: Server, body: bytes, headers: Mapping[str, str] | None
    ) -> tuple[bytes, Any]:
        """One request; its bytes and parsed JSON. Raises unless it is a 200 without errors."""
        status, answer = post(server.url, body, headers)
        try:
            parsed = json.loads(answer)
        except ValueError as exc:
            raise BenchError(f"{query}: {server.name} answered {status}: {answer[:600]!r}") from exc
        if status != 200 or not isinstance(parsed, dict) or parsed.get("errors"):
            raise BenchError(f"{query}: {server.name} answered {status}: {answer[:600]!r}")
        return answer, parsed

    def agree(
        self,
        query: str,
        servers: Sequence[Server],
        agreement: Agreement,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Each server answers the query's check bodies; raise unless each answer is Treegate's
        (the raw server's JSON equal, PostGraphile's equal once mapped). Per server: how."""
        ordered = sorted(servers, key=lambda s: s.name != TREEGATE)  # Treegate answers first
        out: dict[str, dict[str, Any]] = {}
        for server in ordered:
            dialect = self.specs[server.name].dialect if server.name in self.specs else "treegate"
            bodies = agreement.bodies[dialect]
            answers = [self.ask(query, server, body, headers) for body in bodies]
            if server.name == TREEGATE and not agreement.reference:
                agreement.reference = answers
                out[server.name] = {"how": "reference", "requests": len(bodies)}
                continue
            if not agreement.reference:
                raise BenchError(f"{query}: no Treegate answer to compare {server.name}'s with")
            identical = True
            for body, (raw_bytes, parsed), (ref_bytes, ref) in zip(
                bodies, answers, agreement.reference, strict=True
            ):
                if dialect == "postgraphile":
                    try:
                        check_postgraphile(query, ref, parsed)
                    except Disagreement as exc:
                        raise BenchError(f"{query}: {exc}\n  body: {body[:300]!r}") from exc
                    continue
                if parsed != ref:
                    raise BenchError(
                        f"{query}: {server.name}'s answer differs from Treegate's at "
                        f"{first_difference(ref, parsed)}\n  body: {body[:300]!r}"
                    )
                identical = identical and raw_bytes == ref_bytes
            how = "mapped" if dialect == "postgraphile" else "bytes" if identical else "parsed"
            out[server.name] = {"how": how, "requests": len(bodies)}
        self.log(
            f"{query}: answers agree: "
            + ", ".join(f"{name} {check['how']}" for name, check in out.items())
        )
        return out

    # --- Treegate's compiled lane ---------------------------------------------------------------

    def fallbacks(self, server: Server) -> dict[str, float]:
        found = fallback_samples(server.metrics())
        if found is None:
            if not self.warned_no_fallback_metric:
                self.log(
                    f"warning: {server.name}'s /metrics has no {FALLBACKS}; counting it as 0 "
                    "(this Treegate does not count its fallbacks from the compiled lane)"
                )
                self.warned_no_fallback_metric = True
            return {}
        return found

    def check_fallbacks(
        self, query: str, server: Server, before: Mapping[str, float]
    ) -> dict[str, float]:
        after = self.fallbacks(server)
        grown = {
            reason: after[reason] - before.get(reason, 0.0)
            for reason in after
            if after[reason] > before.get(reason, 0.0)
        }
        if grown:
            reasons = ", ".join(f"{reason} ({count:g})" for reason, count in grown.items())
            raise BenchError(
                f"{query}: {server.name} answered the benchmark's documents off the compiled lane "
                f"({FALLBACKS} grew: {reasons})"
            )
        return after

    # --- measuring ----------------------------------------------------------------------------

    def measure(
        self,
        query: str,
        servers: Sequence[Server],
        script: Path,
        prepare: Callable[[Server], list[str]],
        connections: int,
        finish: Callable[[Server, WrkResult], dict[str, Any]] | None = None,
    ) -> dict[str, list[Run]]:
        """Warm-up, then `--repeat` runs per server, alternating the order."""
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
            for server in servers if rep % 2 == 0 else list(servers)[::-1]:
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
                    f"{query} {server.name:<20} run {rep + 1}/{args.repeat}: "
                    f"{run.rps:9.1f} req/s, p50 {run.p50_ms:.2f} ms, p99 {run.p99_ms:.2f} ms, "
                    f"RSS {run.peak_rss_mib:.1f} MiB"
                    + (f", {run.errors} errors" if run.errors else "")
                    + (f", {extra['summary']}" if "summary" in extra else "")
                )
        return runs

    def entry(
        self,
        query: str,
        trees: int,
        specs: Sequence[Spec],
        groups: Sequence[Sequence[Spec]],
        verification: dict[str, dict[str, Any]],
        runs: dict[str, list[Run]],
    ) -> dict[str, Any]:
        servers = {s.name: report.summarize(runs[s.name]) for s in specs if s.name in runs}
        entry: dict[str, Any] = {
            "id": query,
            "title": TITLES[query],
            "trees": trees,
            "servers": servers,
            "verification": verification,
            "groups": [[s.name for s in group] for group in groups],
            "raw_best": report.raw_best(servers),
        }
        entry["ratios"] = report.ratios(entry)
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

    def q6_trees(self, db: SeededDatabase) -> tuple[list[str], list[str]]:
        """Q6's trees (exactly `Q6_TREE_SIZE` messages each), and the trees its answers are
        checked on: some of those, one with a deleted message when there is one."""
        ids = database.sample_trees_of_size(db.url, IDS_FOR_Q6, Q6_TREE_SIZE)
        if not ids:
            raise BenchError(
                f"Q6: {db.name} has no tree of {Q6_TREE_SIZE} messages without a deleted one "
                "(seed more trees, or leave Q6 out)"
            )
        self.databases[str(db.trees)]["q6_trees"] = len(ids)
        self.log(f"Q6: {len(ids):,} trees of {Q6_TREE_SIZE} messages, one drawn per request")
        checks = ids[:20]
        with_deleted = database.tree_with_deleted_messages(db.url)
        if with_deleted is not None:
            checks.append(with_deleted)
        return ids, checks

    def read_phase(self, db: SeededDatabase, queries: Sequence[str]) -> None:
        q2_ids = database.sample_tree_ids(db.url, IDS_FOR_Q2)
        drawn: dict[str, tuple[list[str], list[str]]] = {"Q2": (q2_ids, q2_ids[:20])}
        if "Q6" in queries:
            drawn["Q6"] = self.q6_trees(db)
        for query in queries:
            specs = self.read_specs(query, db.url)
            dialects = {spec.dialect for spec in specs}
            bodies: dict[str, list[bytes]] = {}
            script_args: dict[str, list[str]] = {}
            if query in ID_QUERIES:
                ids, checked = drawn[query]
                ids_file = self.write(f"ids-{db.trees}-{query.lower()}.txt", "\n".join(ids) + "\n")
                checks = [*checked, str(uuid.uuid4())]  # and a tree that does not exist
            for dialect in dialects:
                suffix = "" if dialect == "treegate" else f"-{dialect}"
                if query in ID_QUERIES:
                    variables = {"id": "@ID@"}
                    template = json.dumps(documents.request_body(query, variables, dialect))
                    body_file = self.write(f"{query.lower()}{suffix}.json", template)
                    bodies[dialect] = [template.replace("@ID@", i).encode() for i in checks]
                    script_args[dialect] = [body_file, ids_file]
                else:
                    body = json.dumps(documents.request_body(query, None, dialect))
                    body_file = self.write(f"{query.lower()}{suffix}.json", body)
                    bodies[dialect] = [body.encode()]
                    script_args[dialect] = [body_file]
            agreement = Agreement(bodies)

            def prepare(server: Server, fixed: dict[str, list[str]] = script_args) -> list[str]:
                return fixed[self.specs[server.name].dialect]

            verification: dict[str, dict[str, Any]] = {}
            runs: dict[str, list[Run]] = {}
            groups = self.grouped(specs, db.url)
            for group in groups:
                self.check_quiet(query)
                exported = self.sink_exports()
                servers = self.start_group(group, db.url, f"{db.trees}-{query}")
                try:
                    watched = [s for s in servers if self.specs[s.name].kind == "treegate"]
                    before = {s.name: self.fallbacks(s) for s in watched}
                    verification.update(self.agree(query, servers, agreement))
                    runs.update(
                        self.measure(query, servers, READS_SCRIPT, prepare, self.args.connections)
                    )
                    for server in watched:
                        after = self.check_fallbacks(query, server, before[server.name])
                        verification[server.name]["compiled_fallbacks"] = after
                finally:
                    self.stop_servers()
                if any(spec.name == TRACING for spec in group):
                    # Stopped, the traced server has exported what it held back.
                    exports = self.sink_exports() - exported
                    if exports <= 0:
                        raise BenchError(f"{query}: {TRACING} exported no spans")
                    verification.setdefault(TRACING, {})["otlp_exports"] = exports
            self.entry(query, db.trees, specs, groups, verification, runs)

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

        # Answers that change nothing must be the same on all, byte for byte: a tree that
        # does not exist, one in another state, a draw without candidates, one at the cap.
        ready = database.sample_tree_ids(url, 1, "ready_for_export")
        fixed = [abort(str(uuid.uuid4())), abort(ready[0]), draw("zz")]
        if database.growing_count(url, langs[0]) >= cap:
            fixed.append(draw(langs[0]))
        agreement = Agreement({"treegate": fixed})
        applied_reference: list[Any] = []
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

        specs = [self.q5_treegate_spec(url), *(self.raw_spec(pool) for pool in self.args.raw_pools)]
        groups = self.grouped(specs, url)
        verification: dict[str, dict[str, Any]] = {}
        runs: dict[str, list[Run]] = {}
        for group in groups:
            self.check_quiet("Q5")
            servers = self.start_group(group, url, f"q5-{len(verification)}")
            try:
                verification.update(self.agree("Q5", servers, agreement, headers))
                # Answers that change something: equal but for ids, dates, sequences, counts.
                for server in sorted(servers, key=lambda s: s.name != TREEGATE):
                    database.limit_growing(url, langs, cap // 2)
                    tree = database.growing_ids(url, langs[:1])[0]
                    answers = [
                        normalise(self.ask("Q5", server, body, headers)[1])
                        for body in (draw(langs[0]), abort(tree))
                    ]
                    if server.name == TREEGATE:
                        applied_reference[:] = answers
                    elif answers != applied_reference:
                        raise BenchError(
                            f"Q5: {server.name}'s writes answer differently from Treegate's: "
                            + first_difference(applied_reference, answers)
                        )
                self.log(f"Q5: the servers agree; drawing for {', '.join(langs)} (cap {cap})")
                runs.update(
                    self.measure(
                        "Q5", servers, MUTATIONS_SCRIPT, prepare, self.args.q5_connections, finish
                    )
                )
            finally:
                self.stop_servers()
        entry = self.entry("Q5", db.trees, specs, groups, verification, runs)
        entry["languages"] = langs
        entry["treegate_env"] = specs[0].given
        entry["q5"] = {
            server: {
                "draws_per_s": round(statistics.median(r.extra["draws_per_s"] for r in found), 1),
                "log_rows": sum(r.extra["log_rows"] for r in found),
                "violations": sum(r.extra["violations"] for r in found),
                "details": [d for r in found for d in r.extra["details"]][:10],
                "counters": [r.extra["counters"] for r in found],
            }
            for server, found in runs.items()
        }
        entry["raw_best"] = report.raw_best(entry["q5"], "draws_per_s")
        entry["ratios"] = {}
        database.drop(self.args.server, name)
        self.scratch_databases.remove(name)

    def poll_phase(self, db: SeededDatabase) -> None:
        """Many pollers asking the dashboard's question over GET with If-None-Match: the answers
        per second grow with the pollers, the executions and database transactions should not."""
        self.check_quiet("POLL")
        (treegate,) = self.start_group(
            [self.treegate_spec(TREEGATE, {}, db.url)], db.url, f"{db.trees}-poll"
        )
        try:
            query = urllib.parse.urlencode({"query": dashboard_counts_document()})
            url = f"{treegate.url}?{query}"
            with urllib.request.urlopen(url, timeout=30) as response:
                etag = response.headers["ETag"]
            if not etag:
                raise BenchError("the GET answer has no ETag")
            for n in self.args.pollers:
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
        text = treegate.metrics()

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
        versions = machine.versions(database.server_version(db.url), wrk_version(self.wrk))
        result: dict[str, Any] = {
            "date": f"{started:%Y-%m-%d %H:%M} UTC",
            "label": args.label,
            "treegate": {"root": str(args.treegate), "revision": revision(args.treegate)},
            "machine": {**machine.describe(), "busy": self.busy},
            "versions": {**versions, "postgraphile_stack": self.peer_versions},
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
                "raw_pools": args.raw_pools,
                "raw_log_level": args.log_level,
                "overflow_row": args.overflow_row,
                "uncompiled_row": args.uncompiled_row,
                "tracing_row": args.tracing_row,
                "postgraphile": args.postgraphile,
                "max_active_trees": args.max_active_trees,
                "pollers": args.pollers,
            },
            "servers": self.servers,
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
        for server in bench.group:
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
