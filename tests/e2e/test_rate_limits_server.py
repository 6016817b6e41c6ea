"""Rate limits on a real `treegate serve`: keys made with `treegate keys create --rate-limit`,
one refused while another is served, its bucket refilling, and its rate changed while the
server runs (`treegate keys rate-limit`)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest

from tests.e2e.server import run_cli, serving

pytestmark = pytest.mark.e2e

COUNTS = {"query": "{ treeStateCounts { state count } }"}
REFILL_DEADLINE_S = 30.0
"""How long the test waits for the refused key's next token at most (due in 1 s)."""


def create_key(env: dict[str, str], *args: str) -> str:
    created = run_cli(env, "keys", "create", *args)
    assert created.returncode == 0, created.stderr
    return created.stdout.splitlines()[-1]


def test_a_keys_rate_limit_on_a_real_server(server_env: dict[str, str], tmp_path: Path) -> None:
    assert run_cli(server_env, "migrate").returncode == 0
    burst = create_key(server_env, "--name", "burst", "--rate-limit", "2/s")
    steady = create_key(server_env, "--name", "steady")
    env = {**server_env, "TREEGATE_RATE_LIMITS": "reader=unlimited,anonymous=1/h"}
    with serving(env, tmp_path / "server.log") as base, httpx.Client(base_url=base) as client:

        def post(key: str | None) -> httpx.Response:
            headers = {} if key is None else {"X-API-Key": key}
            return client.post("/graphql", json=COUNTS, headers=headers)

        # Until the first refusal; the other key, asked between, is always served.
        served = 0
        while (answer := post(burst)).status_code == 200 and served < 50:
            served += 1
            assert post(steady).status_code == 200
        assert answer.status_code == 429, answer.text
        assert served >= 2  # the bucket's size
        assert answer.headers["retry-after"] == "1"
        assert answer.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert post(steady).status_code == 200

        # The bucket refills: wait for the key's next served request.
        deadline = time.monotonic() + REFILL_DEADLINE_S
        while (answer := post(burst)).status_code == 429 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert answer.status_code == 200, answer.text

        # Keyless callers have their own default, per address.
        assert post(None).status_code == 200
        assert post(None).status_code == 429

        # A new rate applies from the key's next request, without a restart.
        changed = run_cli(server_env, "keys", "rate-limit", "burst", "unlimited")
        assert changed.returncode == 0, changed.stderr
        assert {post(burst).status_code for _ in range(20)} == {200}
        metrics = client.get("/metrics").text
    assert 'treegate_rate_limited_total{role="anonymous"} 1.0' in metrics
    assert 'treegate_rate_limited_total{role="reader"}' in metrics
