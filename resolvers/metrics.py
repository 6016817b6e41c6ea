"""Prometheus metrics of one app (its own registry: several apps in one process never clash).

Counters are updated where things happen: requests by the HTTP layer, transitions and draws once
their transaction has committed (`resolvers.idempotent.run_once`), limit rejections by the
endpoint. Cache hits and misses, 304s and the database pool are read when scraped.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from domain.outcomes import LotteryDrawn, TransitionApplied

_NAME = re.compile(r"^[_A-Za-z][_0-9A-Za-z]{0,63}$")
MAX_OPERATION_NAMES = 200
"""Operation names are the client's choice: beyond this many distinct ones, `other`."""


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "treegate_requests",
            "GraphQL requests by operation name and outcome (ok, error, refused).",
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
        self.fallbacks = Counter(
            "treegate_compiled_fallbacks",
            "Queries answered by the full execution path instead of a compiled plan, by reason.",
            ["reason"],
            registry=self.registry,
        )
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
        self.registry.register(_Replicas(replicas))

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
        self, caches: Mapping[str, Any], pool: Any, breaker: Any, in_flight: Callable[[], int]
    ) -> None:
        """Values read when scraped: the shared caches' hits and misses (`SharedCache`, by
        name), the database pool's connections (a SQLAlchemy pool), whether the breaker is
        open (`db.faults.Breaker`) and the GraphQL requests in flight."""
        self.registry.register(_Live(caches, pool, breaker, in_flight))


class _Live(Collector):
    def __init__(
        self, caches: Mapping[str, Any], pool: Any, breaker: Any, in_flight: Callable[[], int]
    ) -> None:
        self._caches = caches
        self._pool = pool
        self._breaker = breaker
        self._in_flight = in_flight

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
