"""The results: medians per (query, server), the targets, the printed table and the JSON file.

The table is rendered from the same dictionary that is saved, so the two never disagree.

Servers (their exact settings are in the results' `servers`):

- `treegate`: `treegate serve` at the product's defaults (only `TREEGATE_DATABASE_URL` given);
- `treegate-nocache`: the same with `TREEGATE_COUNT_CACHE_S=0 TREEGATE_RESPONSE_CACHE_S=0`;
- `treegate-overflow10` (Q2 only, `--overflow-row`): caches off and the former pool default
  `TREEGATE_DB_MAX_OVERFLOW=10`, to show what the pool default change did;
- `treegate-uncompiled` (Q6 only, `--uncompiled-row`): caches off and
  `TREEGATE_COMPILED_READS=false` (Strawberry's execution for every request), to show what the
  compiled lane does for a tree's messages;
- `treegate-tracing` (`--tracing-row`): the defaults with `TREEGATE_TRACING=on`, exporting its
  spans by OTLP over HTTP to a local receiver (`bench/otlp_sink.py`), to show what tracing costs;
- `postgraphile`: PostGraphile 5, amber preset (Q1, Q2, Q4, Q6);
- `raw-10`, `raw-32`: the hand-written ceiling with 10 and 32 pooled connections; every ratio
  uses the faster of the two for that query (`raw_best`).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

TREEGATE = "treegate"
NOCACHE = "treegate-nocache"
OVERFLOW = "treegate-overflow10"
UNCOMPILED = "treegate-uncompiled"
TRACING = "treegate-tracing"
POSTGRAPHILE = "postgraphile"
TREEGATE_CONFIGS = (TREEGATE, NOCACHE)
"""The Treegate configurations the ratios are given for."""
PEER_QUERIES = ("Q1", "Q2", "Q4")
NOCACHE_VS_PEER_RPS = 1.0
NOCACHE_VS_PEER_P99 = 1.5
NOCACHE_VS_RAW_Q2 = 0.7
CACHED_VS_PEER = {"Q1": 1.3, "Q4": 1.3}
Q5_VS_RAW = 0.8
RSS_TARGET_MIB = 150.0
SCALE_P50_FACTOR = 2.0
POLL_GROWTH = 1.5
POLL_SLACK_PER_S = 2.0
"""POLL is flat when the figure at the most pollers is at most 1.5x the figure at the fewest,
plus 2 per second (executions and transactions per second are small numbers: about 1 and 3)."""


@dataclass(slots=True)
class Run:
    """One wrk run of one server (a cell)."""

    rps: float
    p50_ms: float
    p99_ms: float
    peak_rss_mib: float
    errors: int
    extra: dict[str, Any] = field(default_factory=dict)

    def as_list(self) -> list[float]:
        return [
            round(self.rps, 1),
            round(self.p50_ms, 2),
            round(self.p99_ms, 2),
            round(self.peak_rss_mib, 1),
        ]


def summarize(runs: list[Run]) -> dict[str, Any]:
    """Medians of req/s and latency over the repetitions; the peak RSS is the largest."""
    if not runs:
        return {}
    return {
        "rps": round(statistics.median(r.rps for r in runs), 1),
        "p50_ms": round(statistics.median(r.p50_ms for r in runs), 2),
        "p99_ms": round(statistics.median(r.p99_ms for r in runs), 2),
        "peak_rss_mib": round(max(r.peak_rss_mib for r in runs), 1),
        "errors": sum(r.errors for r in runs),
        "runs": [r.as_list() for r in runs],
    }


def is_raw(name: str) -> bool:
    return name == "raw" or name.startswith("raw-")


def is_treegate(name: str) -> bool:
    return name == TREEGATE or name.startswith(TREEGATE + "-")


def raw_best(servers: dict[str, dict[str, Any]], key: str = "rps") -> str | None:
    """The raw server instance with the most `key` (req/s, or Q5's draws/s)."""
    found = [(stats[key], name) for name, stats in servers.items() if is_raw(name) and stats]
    return max(found)[1] if found else None


def _ratio(numerator: float | None, denominator: float | None, digits: int = 3) -> float | None:
    if numerator is None or not denominator:
        return None
    return round(float(numerator) / float(denominator), digits)


def ratios(entry: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """req/s of each Treegate configuration over PostGraphile's and over the best raw's."""
    servers = entry["servers"]
    best = entry.get("raw_best")
    peer = servers.get(POSTGRAPHILE, {}).get("rps")
    raw = servers.get(best, {}).get("rps") if best else None
    out: dict[str, dict[str, float | None]] = {}
    for name in TREEGATE_CONFIGS:
        rps = servers.get(name, {}).get("rps")
        if rps is not None:
            out[name] = {"postgraphile": _ratio(rps, peer), "raw": _ratio(rps, raw)}
    return out


def _find(queries: list[dict[str, Any]], query: str, trees: int) -> dict[str, Any] | None:
    return next((q for q in queries if q["id"] == query and q["trees"] == trees), None)


def _stat(entry: dict[str, Any] | None, server: str, key: str) -> float | None:
    if entry is None:
        return None
    value = entry["servers"].get(server, {}).get(key)
    return None if value is None else float(value)


def _target(name: str, value: Any, passed: bool | None) -> dict[str, Any]:
    return {"name": name, "value": value, "pass": passed}


def _at_least(name: str, value: float | None, floor: float) -> dict[str, Any]:
    return _target(name, value, None if value is None else value >= floor)


def _at_most(name: str, value: float | None, ceiling: float) -> dict[str, Any]:
    return _target(name, value, None if value is None else value <= ceiling)


def _poll_flat(polling: list[dict[str, Any]], key: str, label: str) -> dict[str, Any]:
    ordered = sorted(polling, key=lambda p: p["pollers"])
    span = f"{ordered[0]['pollers']}-{ordered[-1]['pollers']}" if ordered else "1-200"
    name = f"POLL {label} flat, {span} pollers (<= {POLL_GROWTH:g}x + {POLL_SLACK_PER_S:g}/s)"
    if len(ordered) < 2:
        return _target(name, None, None)
    first, last = float(ordered[0][key]), float(ordered[-1][key])
    value = f"{first:g} -> {last:g}"
    return _target(name, value, last <= first * POLL_GROWTH + POLL_SLACK_PER_S)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The targets, each with its value and PASS/FAIL (or not run), all from this run."""
    queries: list[dict[str, Any]] = result["queries"]
    base = result["config"]["trees"]
    out: list[dict[str, Any]] = []
    for query in PEER_QUERIES:
        entry = _find(queries, query, base)
        out.append(
            _at_least(
                f"{query} {NOCACHE}/postgraphile req/s >= {NOCACHE_VS_PEER_RPS:g}",
                _ratio(_stat(entry, NOCACHE, "rps"), _stat(entry, POSTGRAPHILE, "rps")),
                NOCACHE_VS_PEER_RPS,
            )
        )
        out.append(
            _at_most(
                f"{query} {NOCACHE}/postgraphile p99 <= {NOCACHE_VS_PEER_P99:g}",
                _ratio(_stat(entry, NOCACHE, "p99_ms"), _stat(entry, POSTGRAPHILE, "p99_ms")),
                NOCACHE_VS_PEER_P99,
            )
        )
    q2 = _find(queries, "Q2", base)
    best = None if q2 is None else q2.get("raw_best")
    out.append(
        _at_least(
            f"Q2 {NOCACHE}/raw-best req/s >= {NOCACHE_VS_RAW_Q2:g}",
            _ratio(_stat(q2, NOCACHE, "rps"), _stat(q2, best, "rps") if best else None),
            NOCACHE_VS_RAW_Q2,
        )
    )
    for query, floor in CACHED_VS_PEER.items():
        entry = _find(queries, query, base)
        out.append(
            _at_least(
                f"{query} {TREEGATE}/postgraphile req/s >= {floor:g}",
                _ratio(_stat(entry, TREEGATE, "rps"), _stat(entry, POSTGRAPHILE, "rps")),
                floor,
            )
        )
    q5 = _find(queries, "Q5", base)
    q5_value = None
    violations = None
    if q5 is not None:
        stats = q5["q5"]
        best5 = q5.get("raw_best")
        if TREEGATE in stats and best5:
            q5_value = _ratio(stats[TREEGATE]["draws_per_s"], stats[best5]["draws_per_s"])
        violations = sum(s["violations"] for s in stats.values())
    out.append(_at_least(f"Q5 {TREEGATE}/raw-best draws/s >= {Q5_VS_RAW:g}", q5_value, Q5_VS_RAW))
    out.append(
        _target(
            "Q5 invariant violations == 0",
            violations,
            None if violations is None else violations == 0,
        )
    )
    peaks = [
        (stats["peak_rss_mib"], name)
        for q in queries
        for name, stats in q["servers"].items()
        if is_treegate(name) and stats.get("peak_rss_mib") is not None
    ]
    peak = max(peaks) if peaks else None
    out.append(
        _target(
            f"peak RSS of every Treegate configuration <= {RSS_TARGET_MIB:g} MiB",
            None if peak is None else f"{peak[0]:g} ({peak[1]})",
            None if peak is None else peak[0] <= RSS_TARGET_MIB,
        )
    )
    polling: list[dict[str, Any]] = result.get("polling") or []
    out.append(_poll_flat(polling, "executions_per_s", "executions/s"))
    out.append(_poll_flat(polling, "db_transactions_per_s", "db transactions/s"))
    scale = result["config"].get("scale")
    if scale:
        for query in ("Q1", "Q2"):
            small, large = _find(queries, query, base), _find(queries, query, scale)
            out.append(
                _at_most(
                    f"{query} {TREEGATE} p50 at {scale:,} trees <= "
                    f"{SCALE_P50_FACTOR:g}x p50 at {base:,}",
                    _ratio(_stat(large, TREEGATE, "p50_ms"), _stat(small, TREEGATE, "p50_ms"), 2),
                    SCALE_P50_FACTOR,
                )
            )
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def _describe_servers(servers: dict[str, dict[str, Any]]) -> Iterable[str]:
    for name, spec in servers.items():
        given = " ".join(f"{k}={v}" for k, v in spec.get("env", {}).items() if k != "PORT")
        lines = [f"  {name:<20} {spec.get('summary', '')}"]
        if given:
            lines.append(f"  {'':<20} env: {given}")
        yield from lines


def render(result: dict[str, Any]) -> str:
    machine, versions, config = result["machine"], result["versions"], result["config"]
    tree = result["treegate"]
    label = f" ({result['label']})" if result.get("label") else ""
    peer = versions.get("postgraphile_stack", {})
    lines = [
        f"Treegate benchmark{label}, {result['date']}",
        f"treegate  {tree['root']} at {tree['revision'] or 'an unknown revision'}",
        f"machine   {machine['cpu']}, {machine['cores']} cores, "
        f"{machine['memory_gib']:.1f} GiB, {machine['kernel']}",
        "software  "
        + ", ".join(
            f"{name} {versions[key]}"
            for name, key in (
                ("Python", "python"),
                ("PostgreSQL", "postgresql"),
                ("Strawberry", "strawberry-graphql"),
                ("SQLAlchemy", "sqlalchemy"),
                ("asyncpg", "asyncpg"),
                ("uvicorn", "uvicorn"),
                ("Starlette", "starlette"),
                ("orjson", "orjson"),
                ("wrk", "wrk"),
            )
            if key in versions
        ),
    ]
    if peer:
        lines.append(
            f"          PostGraphile {peer.get('postgraphile')} (grafast {peer.get('grafast')}, "
            f"grafserv {peer.get('grafserv')}, pg {peer.get('pg')}) on Node.js {peer.get('node')}"
        )
    for busy in machine.get("busy", []):
        lines.append(
            f"busy      {busy['cpu_busy']:.0%} of the CPU was busy before {busy['before']} "
            f"(other work on the machine): {'; '.join(busy['processes'])}"[:200]
        )
    for db in result["databases"].values():
        made = (
            f"reused, seeded {db['seeded_at']} in {db['seed_seconds']:.1f} s"
            if db["reused"]
            else f"seeded now in {db['seed_seconds']:.1f} s, VACUUM ANALYZE "
            f"{db['vacuum_seconds']:.1f} s"
        )
        lines.append(
            f"data      {db['name']}: {db['trees']:,} trees, {db['messages']:,} messages ({made})"
        )
    lines += [
        f"load      wrk -t{config['threads']} -c{config['connections']} "
        f"(Q5: -c{config['q5_connections']}) on 127.0.0.1, {config['duration_s']} s per run "
        f"after a {config['warmup_s']} s warm-up, median of {config['repeat']}, "
        "servers alternated",
        "servers",
        *_describe_servers(result.get("servers", {})),
        "",
        f"{'query':<36} {'trees':>7}  {'server':<20} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'RSS MiB':>8} {'vs PGL':>7} {'vs raw':>7}  answers",
    ]
    for entry in result["queries"]:
        checks = entry.get("verification", {})
        best = entry.get("raw_best")
        entry_ratios = entry.get("ratios", {})
        for index, (server, stats) in enumerate(entry["servers"].items()):
            head = (
                f"{entry['id'] + ' ' + entry['title']:<36} {entry['trees']:>7,}"
                if index == 0
                else " " * 44
            )
            shown = server + (" *" if server == best else "")
            mine = entry_ratios.get(server, {})
            check = checks.get(server, {})
            same = check.get("how", "")
            errors = f"  errors {stats['errors']}" if stats.get("errors") else ""
            lines.append(
                f"{head}  {shown:<20} {_num(stats.get('rps')):>9} "
                f"{_num(stats.get('p50_ms'), 2):>8} {_num(stats.get('p99_ms'), 2):>8} "
                f"{_num(stats.get('peak_rss_mib')):>8} "
                f"{_ratio_text(mine.get('postgraphile')):>7} {_ratio_text(mine.get('raw')):>7}"
                f"  {same}{errors}".rstrip()
            )
        if "q5" in entry:
            best5 = entry.get("raw_best")
            best_draws = entry["q5"][best5]["draws_per_s"] if best5 else None
            for server, q in entry["q5"].items():
                mark = " *" if server == best5 else ""
                versus = _ratio(q["draws_per_s"], best_draws) if is_treegate(server) else None
                lines.append(
                    " " * 44
                    + f"  {server + mark:<20} {q['draws_per_s']:.1f} draws/s"
                    + (f" ({versus:.2f}x raw)" if versus is not None else "")
                    + f", {q['log_rows']} log rows, {q['violations']} violations"
                )
    lines.append("  (* the faster raw server of the query, the one the 'vs raw' ratios use)")
    if result.get("polling"):
        lines += [
            "",
            "POLL one GET query (the dashboard's counts) with If-None-Match, Treegate at its "
            "defaults (1 s shared answers)",
            f"{'pollers':>8} {'req/s':>10} {'p50 ms':>8} {'executions/s':>13} "
            f"{'db transactions/s':>18} {'304s':>7}",
        ]
        for p in result["polling"]:
            lines.append(
                f"{p['pollers']:>8} {p['rps']:>10,.0f} {p['p50_ms']:>8.2f} "
                f"{p['executions_per_s']:>13.2f} {p['db_transactions_per_s']:>18.2f} "
                f"{p['not_modified_share']:>7.1%}"
            )
    lines += ["", "targets"]
    for target in result["targets"]:
        verdict = {True: "PASS", False: "FAIL", None: "n/a "}[target["pass"]]
        value = target["value"]
        shown = "not run" if value is None else f"{value:g}" if isinstance(value, float) else value
        lines.append(f"  {verdict}  {target['name']:<62} {shown}")
    return "\n".join(lines)


def save(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    return path
