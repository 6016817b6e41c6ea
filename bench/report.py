"""The results: medians per (query, server), the targets, the printed table and the JSON file.

The table is rendered from the same dictionary that is saved, so the two never disagree.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVERS = ("treegate", "raw")
RATIO_TARGETS = {"Q1": 0.85, "Q2": 0.85, "Q3": 0.9, "Q4": 0.7}
RSS_TARGET_MIB = 150.0
SCALE_P50_FACTOR = 2.0


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


def ratio(entry: dict[str, Any]) -> float | None:
    servers = entry["servers"]
    raw = servers.get("raw", {}).get("rps")
    treegate = servers.get("treegate", {}).get("rps")
    if not raw or treegate is None:
        return None
    return round(float(treegate) / float(raw), 3)


def _find(queries: list[dict[str, Any]], query: str, trees: int) -> dict[str, Any] | None:
    return next((q for q in queries if q["id"] == query and q["trees"] == trees), None)


def targets(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, each with its value and PASS/FAIL (or not run)."""
    queries: list[dict[str, Any]] = result["queries"]
    base = result["config"]["trees"]
    out: list[dict[str, Any]] = []
    for query, floor in RATIO_TARGETS.items():
        entry = _find(queries, query, base)
        value = None if entry is None else entry.get("ratio")
        out.append(
            {
                "name": f"{query} Treegate/raw req/s >= {floor}",
                "value": value,
                "pass": None if value is None else value >= floor,
            }
        )
    q5 = _find(queries, "Q5", base)
    violations = None if q5 is None else sum(s["violations"] for s in q5["q5"].values())
    out.append(
        {
            "name": "Q5 invariant violations == 0",
            "value": violations,
            "pass": None if violations is None else violations == 0,
        }
    )
    peaks = [
        q["servers"]["treegate"]["peak_rss_mib"]
        for q in queries
        if q["servers"].get("treegate", {}).get("peak_rss_mib") is not None
    ]
    peak = max(peaks) if peaks else None
    out.append(
        {
            "name": f"Treegate peak RSS <= {RSS_TARGET_MIB:g} MiB",
            "value": peak,
            "pass": None if peak is None else peak <= RSS_TARGET_MIB,
        }
    )
    scale = result["config"].get("scale")
    if scale:
        for query in ("Q1", "Q2"):
            small, large = _find(queries, query, base), _find(queries, query, scale)
            value = None
            if small and large:
                value = round(
                    large["servers"]["treegate"]["p50_ms"] / small["servers"]["treegate"]["p50_ms"],
                    2,
                )
            out.append(
                {
                    "name": f"{query} Treegate p50 at {scale:,} trees <= "
                    f"{SCALE_P50_FACTOR:g}x p50 at {base:,}",
                    "value": value,
                    "pass": None if value is None else value <= SCALE_P50_FACTOR,
                }
            )
    return out


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def render(result: dict[str, Any]) -> str:
    machine, versions, config = result["machine"], result["versions"], result["config"]
    tree = result["treegate"]
    label = f" ({result['label']})" if result.get("label") else ""
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
        ),
    ]
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
        f"servers   one uvicorn process each (uvloop, httptools, log level "
        f"{config['log_level']}); {config['pool_size']} database connections each "
        f"(TREEGATE_DB_POOL_SIZE={config['pool_size']}, TREEGATE_DB_MAX_OVERFLOW=0); "
        f"lottery cap {config['max_active_trees']}",
        "",
        f"{'query':<40} {'trees':>9}  {'server':<8} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'RSS MiB':>8} {'TG/raw':>7}  same JSON",
    ]
    for entry in result["queries"]:
        check = entry.get("verification", {})
        same = "bytes" if check.get("bytes_identical") else "parsed" if check.get("equal") else "NO"
        for index, server in enumerate(SERVERS):
            stats = entry["servers"].get(server, {})
            head = (
                f"{entry['id'] + ' ' + entry['title']:<40} {entry['trees']:>9,}"
                if index == 0
                else " " * 50
            )
            tail = f"{_num(entry.get('ratio'), 3):>7}  {same}" if index == 0 else ""
            errors = f"  errors {stats['errors']}" if stats.get("errors") else ""
            lines.append(
                f"{head}  {server:<8} {_num(stats.get('rps')):>9} "
                f"{_num(stats.get('p50_ms'), 2):>8} {_num(stats.get('p99_ms'), 2):>8} "
                f"{_num(stats.get('peak_rss_mib')):>8} {tail}{errors}".rstrip()
            )
        if "q5" in entry:
            parts = [
                f"{server}: {q['draws_per_s']:.1f} draws/s, {q['log_rows']} log rows, "
                f"{q['violations']} violations"
                for server, q in entry["q5"].items()
            ]
            lines.append(" " * 50 + "  " + "; ".join(parts))
    if result.get("polling"):
        lines += [
            "",
            "POLL one GET query (the dashboard's counts) with If-None-Match, 1 s shared answers",
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
        lines.append(f"  {verdict}  {target['name']:<52} {shown}")
    return "\n".join(lines)


def save(result: dict[str, Any], directory: Path, stamp: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=False) + "\n")
    return path
