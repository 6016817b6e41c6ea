"""A throwaway PostgreSQL cluster (its own port and data directory, stopped and restarted at will
without harm to anything else) and a real `treegate serve` on it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.cluster import ThrowawayCluster
from tests.faults.deployment import Deployment, deploy

SEEDED = 200


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster.create() as made:
        made.start()
        yield made


@pytest.fixture
def deployment(cluster: ThrowawayCluster) -> Deployment:
    if not cluster.is_running():
        cluster.start()
    return deploy(cluster, f"treegate_{uuid.uuid4().hex[:8]}", SEEDED)


@pytest.fixture
def server_log(tmp_path: Path) -> Path:
    return tmp_path / "server.log"
