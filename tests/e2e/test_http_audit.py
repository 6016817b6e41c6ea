"""The official GraphQL-over-HTTP audit (npm `graphql-http` 1.23.1, `auditServer`) against a real
`treegate serve` process: every audit must pass, none with a warning.

The audit sends no credentials and uses introspection (`__type`), so it runs against the
development defaults (anonymous reader, introspection on), as `make run` serves; a second run
checks a production server with introspection and anonymous reads turned back on by settings
answers the same way (the HTTP rules do not depend on the mode).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.server import clean_env, migrate_and_seed, serving

pytestmark = pytest.mark.e2e

AUDIT_DIR = Path(__file__).parent / "audit"
AUDITS = 61  # graphql-http 1.23.1's server audits


def run_audit(url: str) -> list[dict[str, Any]]:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the audit (the machine has it)"
    assert (AUDIT_DIR / "node_modules" / "graphql-http").is_dir(), "run `make audit-tools`"
    done = subprocess.run(
        [node, str(AUDIT_DIR / "audit.mjs"), url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=AUDIT_DIR,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return results


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {
            "TREEGATE_ENV": "production",
            "TREEGATE_ANONYMOUS_ROLE": "reader",
            "TREEGATE_INTROSPECTION": "true",
        },
    ],
    ids=["development", "production"],
)
def test_every_graphql_over_http_audit_passes(tmp_path: Path, settings: dict[str, str]) -> None:
    env = {
        **clean_env(),
        "TREEGATE_DATABASE_URL": f"sqlite:///{tmp_path / 'audit.db'}",
        **settings,
    }
    migrate_and_seed(env, 20)
    with serving(env, tmp_path / "server.log") as base:
        results = run_audit(f"{base}/graphql")
    counts = {status: sum(r["status"] == status for r in results) for status in ("ok", "warn")}
    counts["error"] = len(results) - counts["ok"] - counts["warn"]
    print(f"graphql-http audit ({settings.get('TREEGATE_ENV', 'development')}): {counts}")
    failed = [r for r in results if r["status"] != "ok"]
    assert failed == [], json.dumps(failed, indent=1)
    assert len(results) == AUDITS
