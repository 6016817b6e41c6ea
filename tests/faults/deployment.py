"""A Treegate deployment on a throwaway cluster: a migrated, seeded database, the environment to
serve it with, and an admin key. Shared by the fault tests and the soak run (`bench/soak.py`)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.e2e.server import clean_env, migrate_and_seed, run_cli
from tests.faults.cluster import ThrowawayCluster


@dataclass(frozen=True)
class Deployment:
    cluster: ThrowawayCluster
    url: str
    env: dict[str, str]
    key: str


def deploy(
    cluster: ThrowawayCluster, database: str, trees: int, log_level: str = "info"
) -> Deployment:
    """Create `database` on the cluster, migrate it, seed `trees` trees and make an admin key;
    the environment turns the caches off, so that every request reaches the database."""
    cluster.create_database(database)
    url = cluster.url(database)
    env = clean_env() | {
        "TREEGATE_DATABASE_URL": url,
        "TREEGATE_COUNT_CACHE_S": "0",
        "TREEGATE_RESPONSE_CACHE_S": "0",
        "TREEGATE_LOG_LEVEL": log_level,
    }
    migrate_and_seed(env, trees)
    created = run_cli(env, "keys", "create", "--name", "fault-load", "--role", "admin")
    assert created.returncode == 0, created.stderr
    return Deployment(cluster, url, env, created.stdout.strip().splitlines()[-1])
