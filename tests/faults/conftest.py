"""A throwaway PostgreSQL cluster (its own port and data directory, stopped and restarted at will
without harm to anything else) and a real `treegate serve` on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.server import clean_env, migrate_and_seed, run_cli
from tests.faults.cluster import ThrowawayCluster

SEEDED = 200


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster.create() as made:
        made.start()
        yield made


@dataclass(frozen=True)
class Deployment:
    """A migrated, seeded database on the cluster, the environment to serve it, an admin key."""

    cluster: ThrowawayCluster
    url: str
    env: dict[str, str]
    key: str


@pytest.fixture
def deployment(cluster: ThrowawayCluster) -> Deployment:
    if not cluster.is_running():
        cluster.start()
    name = f"treegate_{uuid.uuid4().hex[:8]}"
    cluster.create_database(name)
    url = cluster.url(name)
    env = clean_env() | {
        "TREEGATE_DATABASE_URL": url,
        # Every request reaches the database: nothing is answered from a cache.
        "TREEGATE_COUNT_CACHE_S": "0",
        "TREEGATE_RESPONSE_CACHE_S": "0",
        "TREEGATE_LOG_LEVEL": "info",
    }
    migrate_and_seed(env, SEEDED)
    created = run_cli(env, "keys", "create", "--name", "fault-load", "--role", "admin")
    assert created.returncode == 0, created.stderr
    return Deployment(cluster, url, env, created.stdout.strip().splitlines()[-1])


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"
