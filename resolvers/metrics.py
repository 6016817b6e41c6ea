"""Prometheus metrics of one app (its own registry: several apps in one process never clash).

Counters are updated where things happen: requests by the HTTP layer, transitions and draws once
their transaction has committed (`resolvers.idempotent.run_once`), limit rejections by the
endpoint. Cache hits and misses, 304s and the database pool are read when scraped.

With several worker processes (`treegate serve --workers N`), `treegate serve` sets
`PROMETHEUS_MULTIPROC_DIR` and prometheus-client keeps every process's counters and histograms in
files there; any worker's `/metrics` then sums them all (its multiprocess mode). The values read
when scraped are copied into those files by each worker every `MIRROR_INTERVAL_S` (and by the
scraped one at once), as gauges summed over the live workers.
"""

from __future__ import annotations

import asyncio
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from db.background import Background
from domain.outcomes import LotteryDrawn, TransitionApplied

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
MAX_OPERATION_NAMES = 200
"""Operation names are the client's choice: beyond this many distinct ones, `other`."""
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client's switch to its multiprocess mode (a directory for every process's values)."""
MIRROR_INTERVAL_S = 1.0
"""How often a worker copies its live values for the other workers' /metrics."""
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "treegate_requests",
            "GraphQL requests by operation name and outcome (ok, error, refused, unavailable, "
            "overloaded, rate_limited).",
            ["operation", "outcome"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "treegate_request_duration_seconds",
            "Time to answer a GraphQL request.",
            ["method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
            registry=self.registry,
        )
        self.transitions = Counter(
            "treegate_transitions",
            "State changes committed through this process, by (from, to).",
            ["from_state", "to_state"],
            registry=self.registry,
        )
        self.draws = Counter(
            "treegate_lottery_draws",
            "Trees the prompt lottery activated, by language.",
            ["lang"],
            registry=self.registry,
        )
        self.rejections = Counter(
            "treegate_limit_rejections",
            "Requests refused by a limit, by its code.",
            ["limit"],
            registry=self.registry,
        )
        self.not_modified = Counter(
            "treegate_not_modified", "GET answers 304 Not Modified.", registry=self.registry
        )
        self.database_faults = Counter(
            "treegate_database_faults",
            "Requests answered 503 for a database fault, by its reason.",
            ["reason"],
            registry=self.registry,
        )
        self.retries = Counter(
            "treegate_transaction_retries",
            "Mutation transactions tried again after a conflict, by its reason.",
            ["reason"],
            registry=self.registry,
        )
        self.overloaded = Counter(
            "treegate_overload_rejections",
            "Requests answered 503 at once: the process's concurrency limit was reached.",
            registry=self.registry,
        )
        self.rate_limits = Counter(
            "treegate_rate_limited",
            "GraphQL requests answered 429: the caller's rate limit was reached, by role "
            "(anonymous: callers without a key).",
            ["role"],
            registry=self.registry,
        )
        self.rate_limit_store_failures = Counter(
            "treegate_rate_limit_store_failures",
            "Requests whose token Redis (TREEGATE_RATE_LIMIT_REDIS_URL) could not give: the "
            "process limited them with its own buckets.",
            registry=self.registry,
        )
        self.fallbacks = Counter(
            "treegate_compiled_fallbacks",
            "Queries answered by the full execution path instead of a compiled plan, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.multiprocess_dir = os.environ.get(MULTIPROCESS_DIR) or None
        self._mirror = _Mirror() if self.multiprocess_dir is not None else None
        self._mirroring = Background("treegate-metrics")
        self.reads: Counter | None = None
        self.replica_retries: Counter | None = None
        self._reads: dict[str, Any] = {}
        self._names: set[str] = set()
        # Labelled children, looked up once: `labels()` validates and locks on every call.
        self._answered: dict[tuple[str, str], Any] = {}
        self._durations: dict[str, Any] = {}

    def answered(self, operation: str, outcome: str, method: str, seconds: float) -> None:
        """One GraphQL request answered: counted by operation and outcome, timed by method."""
        counter = self._answered.get((operation, outcome))
        if counter is None:
            counter = self._answered[operation, outcome] = self.requests.labels(operation, outcome)
        counter.inc()
        histogram = self._durations.get(method)
        if histogram is None:
            histogram = self._durations[method] = self.duration.labels(method)
        histogram.observe(seconds)

    def rate_limited(self, role: str) -> None:
        self.rate_limits.labels(role).inc()

    def watch_replicas(self, replicas: Callable[[], Iterable[Any]]) -> None:
        """With read replicas: queries counted by the database they ran on, reads retried on the
        primary after a replica failed, and each replica's health and lag (`db.replicas`, read
        when scraped)."""
        self.reads = Counter(
            "treegate_reads",
            "Queries executed, by the database they ran on (`primary` or a replica's name).",
            ["target"],
            registry=self.registry,
        )
        self.replica_retries = Counter(
            "treegate_replica_read_retries",
            "Queries that failed on a replica (its connection) and ran again on the primary.",
            ["replica"],
            registry=self.registry,
        )
        self._register(_Replicas(replicas))

    def read_on(self, target: str) -> None:
        """One query executed on `target` (with read replicas only)."""
        counter = self._reads.get(target)
        if counter is None:
            assert self.reads is not None, "watch_replicas() first"
            counter = self._reads[target] = self.reads.labels(target)
        counter.inc()

    def fallback(self, reason: str) -> None:
        self.fallbacks.labels(reason).inc()

    def operation(self, name: str | None) -> str:
        if name is None:
            return "anonymous"
        if name in self._names:
            return name
        if not _NAME.match(name) or len(self._names) >= MAX_OPERATION_NAMES:
            return "other"
        self._names.add(name)
        return name

    def committed(self, outcome: Any) -> None:
        """A write's outcome, once its transaction committed."""
        if isinstance(outcome, TransitionApplied) and outcome.transition is not None:
            change = outcome.transition
            source = "NONE" if change.from_state is None else change.from_state.name
            self.transitions.labels(source, change.to_state.name).inc()
        elif isinstance(outcome, LotteryDrawn) and outcome.drawn:
            self.transitions.labels("PROMPT_LOTTERY_WAITING", "GROWING").inc(len(outcome.drawn))
            self.draws.labels(outcome.lang).inc(len(outcome.drawn))

    def watch(
        self,
        caches: Mapping[str, Any],
        pool: Any,
        breaker: Any,
        in_flight: Callable[[], int],
        listener: Any = None,
    ) -> None:
        """Values read when scraped: the shared caches' hits and misses (`SharedCache`, by
        name), the database pool's connections (a SQLAlchemy pool), whether the breaker is
        open (`db.faults.Breaker`), the GraphQL requests in flight and the state of the
        listener for other processes' writes (`db.notify.WriteListener`, PostgreSQL only)."""
        self._register(_Live(caches, pool, breaker, in_flight, listener))

    def _register(self, collector: Collector) -> None:
        """A collector of values read when scraped; with several workers, also mirrored."""
        self.registry.register(collector)
        if self._mirror is not None:
            self._mirror.collectors.append(collector)

    def exposition(self) -> bytes:
        """The text /metrics answers: this process's metrics, or every worker's summed."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        if self._mirror is not None:
            self._mirror.sync()
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=self.multiprocess_dir)  # type: ignore[no-untyped-call]
        return generate_latest(registry)

    def start(self) -> None:
        """In multiprocess mode: copy the live values for the other workers, periodically."""
        if self._mirror is not None:
            self._mirroring.start(self._mirror.run)

    async def stop(self) -> None:
        """In multiprocess mode: this process's live values leave the sums (it is stopping)."""
        await self._mirroring.stop()
        if self.multiprocess_dir is not None:
            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)  # type: ignore[no-untyped-call]


_MIRROR_MODES: dict[str, Literal["livemax"]] = {"treegate_replica_lag_seconds": "livemax"}
"""How a gauge combines over workers where a sum would mean nothing (prometheus-client's modes)."""


class _Mirror:
    """The values read when scraped (`_Live`, `_Replicas`) written into prometheus-client's
    per-process files: gauges summed over the live workers (a replica's lag: the largest any
    live worker saw), counters over every worker that ever ran."""

    def __init__(self) -> None:
        self.collectors: list[Collector] = []
        self._gauges: dict[str, Gauge] = {}
        self._counters: dict[str, Counter] = {}
        self._last: dict[tuple[str, tuple[str, ...]], float] = {}

    async def run(self) -> None:
        while True:
            self.sync()
            await asyncio.sleep(MIRROR_INTERVAL_S)

    def sync(self) -> None:
        for collector in self.collectors:
            self._copy(collector)

    def _copy(self, collector: Collector) -> None:
        for family in collector.collect():
            for sample in family.samples:
                names = tuple(sample.labels)
                values = tuple(sample.labels.values())
                if family.type == "counter":
                    counter = self._counters.get(family.name)
                    if counter is None:
                        counter = self._counters[family.name] = Counter(
                            family.name, family.documentation, names, registry=None
                        )
                    seen = self._last.get((family.name, values), 0.0)
                    if sample.value > seen:
                        (counter.labels(*values) if names else counter).inc(sample.value - seen)
                        self._last[family.name, values] = sample.value
                else:
                    gauge = self._gauges.get(family.name)
                    if gauge is None:
                        gauge = self._gauges[family.name] = Gauge(
                            family.name,
                            family.documentation,
                            names,
                            registry=None,
                            multiprocess_mode=_MIRROR_MODES.get(family.name, "livesum"),
                        )
                    (gauge.labels(*values) if names else gauge).set(sample.value)


class _Live(Collector):
    def __init__(
        self,
        caches: Mapping[str, Any],
        pool: Any,
        breaker: Any,
        in_flight: Callable[[], int],
        listener: Any,
    ) -> None:
        self._caches = caches
        self._pool = pool
        self._breaker = breaker
        self._in_flight = in_flight
        self._listener = listener

    def collect(self) -> Iterator[Any]:
        lookups = CounterMetricFamily(
            "treegate_cache_requests",
            "Shared cache lookups, by cache and result.",
            labels=["cache", "result"],
        )
        for name, cache in self._caches.items():
            lookups.add_metric([name, "hit"], cache.hits)
            lookups.add_metric([name, "miss"], cache.misses)
        yield lookups
        connections = GaugeMetricFamily(
            "treegate_db_pool_connections", "Database connections, by state.", labels=["state"]
        )
        connections.add_metric(["in_use"], self._pool.checkedout())
        connections.add_metric(["idle"], self._pool.checkedin())
        yield connections
        yield GaugeMetricFamily(
            "treegate_db_pool_size", "Connections the pool keeps open.", value=self._pool.size()
        )
        yield GaugeMetricFamily(
            "treegate_db_unavailable",
            "1 while the database is known to be down (new connections refused at once).",
            value=int(self._breaker.open),
        )
        yield GaugeMetricFamily(
            "treegate_requests_in_flight",
            "GraphQL requests being served now.",
            value=self._in_flight(),
        )
        if self._listener is not None:
            yield from _listener_metrics(self._listener)


def _listener_metrics(listener: Any) -> Iterator[Any]:
    yield GaugeMetricFamily(
        "treegate_cache_listener_connected",
        "1 while this process listens for other processes' writes (0: its caches fall back "
        "to their TTL).",
        value=int(listener.connected),
    )
    yield CounterMetricFamily(
        "treegate_cache_invalidations",
        "Other processes' writes heard, each of which cleared this process's caches.",
        value=listener.notifications,
    )
    yield CounterMetricFamily(
        "treegate_cache_listener_reconnects",
        "Times the listening connection was established again after it was lost.",
        value=listener.reconnects,
    )


class _Replicas(Collector):
    def __init__(self, replicas: Callable[[], Iterable[Any]]) -> None:
        self._replicas = replicas

    def collect(self) -> Iterator[Any]:
        healthy = GaugeMetricFamily(
            "treegate_replica_healthy",
            "1 while a read replica is in rotation (reachable, in recovery, lag within the "
            "maximum), else 0.",
            labels=["replica"],
        )
        lag = GaugeMetricFamily(
            "treegate_replica_lag_seconds",
            "A read replica's replay lag at its last check (NaN when unknown).",
            labels=["replica"],
        )
        for replica in self._replicas():
            state = replica.state
            healthy.add_metric([replica.name], int(state.healthy))
            lag.add_metric([replica.name], math.nan if state.lag_s is None else state.lag_s)
        yield healthy
        yield lag
