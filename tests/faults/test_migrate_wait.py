"""`treegate migrate --wait`: a container starts beside its database and migrates once it is up."""

from __future__ import annotations

import subprocess

from tests.e2e.server import TREEGATE, clean_env, run_cli
from tests.faults.cluster import ThrowawayCluster


def test_migrate_waits_for_a_database_that_starts_later(cluster: ThrowawayCluster) -> None:
    cluster.stop("fast")
    env = clean_env() | {"TREEGATE_DATABASE_URL": cluster.url()}
    process = subprocess.Popen(
        [TREEGATE, "migrate", "--wait", "60"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        # The event: it found the database down and said it waits (then the database starts).
        waiting = process.stderr.readline()
        assert waiting.startswith(f"waiting up to 60 s for the database at {cluster.url()}")
        cluster.start()
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    assert out == f"migrated {cluster.url()}\n"
    assert err == ""


def test_migrate_gives_up_after_its_wait(cluster: ThrowawayCluster) -> None:
    cluster.stop("fast")
    result = run_cli(
        clean_env() | {"TREEGATE_DATABASE_URL": cluster.url()}, "migrate", "--wait", "0.5"
    )
    assert result.returncode == 69
    waiting, failed = result.stderr.strip().splitlines()
    assert waiting.startswith("waiting up to 0.5 s for the database")
    assert failed.startswith(f"treegate: cannot reach the database at {cluster.url()}")
