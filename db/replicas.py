"""Read replicas: which database a query reads from, and each replica's health.

`ReadRouter` holds one engine per PostgreSQL streaming replica (`TREEGATE_READ_DATABASE_URLS`)
and a background task that checks every replica each `TREEGATE_REPLICA_CHECK_S` seconds, on
connections of its own (a busy pool does not make a replica look down):

- reachable, within the check's timeout;
- `pg_is_in_recovery()`: a replica that was promoted no longer follows the primary and could
  answer with data the primary never had, so it is taken out;
- its replay lag, in seconds (`replay_lag`): at every check the primary's WAL position
  (`pg_current_wal_lsn()`) is sampled, each new position with the time it was first seen. A
  replica's lag is the time since the primary first held WAL the replica has not replayed yet:
  0 when the replica has replayed everything the primary had written at the last sample, however
  long ago the last write was (`now() - pg_last_xact_replay_timestamp()` would grow while the
  primary is idle), and growing with the clock while replay is behind (stopped, paused, slow).
  It is exact to one check interval and never above the truth (a position counts from when its
  sample came back). WAL that changes no rows counts too (a checkpoint's record): a replica
  whose replay is paused falls behind at the primary's next checkpoint even without writes,
  which is right for a replica that has stopped following. When no sample of the primary
  exists (the primary cannot be reached), the replica's own view serves: 0 if it has replayed
  all it received, else the time since the last transaction it replayed committed.

A replica that is unreachable, not in recovery, or lags more than `TREEGATE_REPLICA_MAX_LAG_S`
is out of rotation; the first check that finds it healthy again puts it back. A read that fails
on a replica's connection also takes it out at once (`read_failed`), until the next check.
`pick` hands out the replicas in rotation in turn, or None: read from the primary.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import URL

from db.background import Background
from db.engine import PoolOptions, breaker, create_engine, normalize_url, probe_engine
from db.faults import fault_reason

logger = logging.getLogger("treegate.replicas")

PRIMARY = "primary"
"""The target name of reads that run on the primary (metrics, logs)."""

_PRIMARY_LSN = text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
_REPLICA_STATE = text(
    "SELECT pg_is_in_recovery(),"
    " pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::bigint,"
    " pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint,"
    " extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8"
)


def replica_name(url: str | URL) -> str:
    """How a replica is named in metrics, logs and /readyz: host:port/database, no credentials."""
    parsed = normalize_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database or ''}"


def replay_lag(samples: Iterable[tuple[float, int]], replayed: int, now: float) -> float:
    """Seconds since the primary first held WAL beyond `replayed` (the replica's replay position).

    `samples` are (time seen, the primary's WAL position), oldest first, positions increasing.
    The first sample beyond `replayed` is when the primary had something the replica still has
    not replayed: the replica is at least that far behind. None beyond it: lag 0.
    """
    for seen, position in samples:
        if position > replayed:
            return max(0.0, now - seen)
    return 0.0


@dataclass(frozen=True, slots=True)
class ReplicaState:
    """What one check found: healthy, or why not (`reason`)."""

    healthy: bool
    reason: str | None
    """None when healthy; else `not_checked`, `unreachable` (or another fault reason),
    `not_in_recovery`, `lagging` or `read_failed`."""
    lag_s: float | None
    in_recovery: bool | None


class Replica:
    def __init__(self, url: str, pool: PoolOptions) -> None:
        self.name = replica_name(url)
        self.engine = create_engine(url, pool)
        # Checks run on a connection of their own, as /readyz does.
        self.probe = probe_engine(url, pool)
        self.state = ReplicaState(False, "not_checked", None, None)

    @property
    def healthy(self) -> bool:
        return self.state.healthy

    def describe(self) -> dict[str, Any]:
        state = self.state
        return {
            "name": self.name,
            "healthy": state.healthy,
            "reason": state.reason,
            "lag_s": None if state.lag_s is None else round(state.lag_s, 3),
            "in_recovery": state.in_recovery,
        }


class ReadRouter:
    """Where queries read (see the module's docstring)."""

    def __init__(
        self,
        primary_url: str | URL,
        replica_urls: Sequence[str],
        pool: PoolOptions,
        *,
        interval: float,
        max_lag: float,
        timeout: float,
    ) -> None:
        self.interval = interval
        self.max_lag = max_lag
        self.timeout = timeout
        self.replicas = [Replica(url, pool) for url in replica_urls]
        self._primary = probe_engine(primary_url, pool)
        # Enough history to tell a lag well past the maximum: each sample is a new position,
        # at most one per check.
        history = math.ceil(max(60.0, 4 * max_lag) / interval) + 2
        self._samples: collections.deque[tuple[float, int]] = collections.deque(
            maxlen=min(history, 100_000)
        )
        self._rotation: list[Replica] = []
        self._turn = 0
        self._task = Background("treegate-replica-checks")
        self.checks = 0
        """Completed rounds of checks (tests wait on it)."""

    def pick(self) -> Replica | None:
        """The next replica in rotation, or None when none is healthy (read from the primary)."""
        rotation = self._rotation
        if not rotation:
            return None
        self._turn += 1
        return rotation[self._turn % len(rotation)]

    def read_failed(self, replica: Replica, reason: str) -> None:
        """A read on `replica` failed with a connection fault: out of rotation until the next
        check finds it healthy."""
        if replica.healthy:
            self._set(replica, ReplicaState(False, "read_failed", replica.state.lag_s, None))
            logger.warning("replica %s out of rotation: a read failed (%s)", replica.name, reason)

    def describe(self) -> list[dict[str, Any]]:
        return [replica.describe() for replica in self.replicas]

    def _set(self, replica: Replica, state: ReplicaState) -> None:
        replica.state = state
        self._rotation = [r for r in self.replicas if r.healthy]

    async def check(self) -> None:
        """One round: sample the primary's WAL position, then check every replica."""
        with contextlib.suppress(Exception):  # the primary's health is /readyz's business
            async with asyncio.timeout(self.timeout), self._primary.connect() as conn:
                position = int((await conn.execute(_PRIMARY_LSN)).scalar_one())
            # Seen once the answer is back: the primary held this WAL by then at the latest,
            # so the lags computed from it are never more than the truth.
            if not self._samples or position > self._samples[-1][1]:
                self._samples.append((time.monotonic(), position))
        states = await asyncio.gather(*(self._check(replica) for replica in self.replicas))
        for replica, state in zip(self.replicas, states, strict=True):
            was = replica.state
            if state.healthy:
                # The check just connected: requests need not wait for a probe of their own to
                # learn that the replica is back (the breaker would refuse them meanwhile).
                breaker(replica.engine).succeeded()
            self._set(replica, state)
            if state.healthy and not was.healthy:
                logger.info("replica %s in rotation (lag %.3f s)", replica.name, state.lag_s)
            elif not state.healthy and (was.healthy or was.reason != state.reason):
                logger.warning(
                    "replica %s out of rotation: %s (lag %s s)",
                    replica.name,
                    state.reason,
                    "unknown" if state.lag_s is None else f"{state.lag_s:.3f}",
                )
        self.checks += 1

    async def _check(self, replica: Replica) -> ReplicaState:
        try:
            async with asyncio.timeout(self.timeout), replica.probe.connect() as conn:
                row = (await conn.execute(_REPLICA_STATE)).one()
        except Exception as exc:  # any failure: not a replica to read from now
            reason = "timeout" if isinstance(exc, TimeoutError) else fault_reason(exc)
            return ReplicaState(False, reason, None, None)
        in_recovery, received, replayed, since_replay = row
        if not in_recovery:
            return ReplicaState(False, "not_in_recovery", None, False)
        now = time.monotonic()
        if self._samples and replayed is not None:
            lag = replay_lag(self._samples, int(replayed), now)
        elif received is None or replayed is None or received == replayed:
            lag = 0.0
        else:
            lag = max(0.0, float(since_replay or 0.0))
        if lag > self.max_lag:
            return ReplicaState(False, "lagging", lag, True)
        return ReplicaState(True, None, lag, True)

    async def _run(self) -> None:
        while True:
            try:
                await self.check()
            except Exception:  # a bug must not end the checks: log it, check again
                logger.exception("replica checks failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        """Stop the checks and close every replica connection."""
        await self._task.stop()
        for replica in self.replicas:
            await replica.engine.dispose()
            await replica.probe.dispose()
        await self._primary.dispose()
