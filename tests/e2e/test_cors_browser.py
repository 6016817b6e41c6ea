"""CORS in real headless Chromium: a page served from a second local origin calls a real
`treegate serve` with `fetch` (a query with a key, a mutation with a moderator key, a GET poll
revalidated to 304 with the ETag the browser let the page read); from an origin Treegate does
not name, the browser blocks the same calls (fetch rejects with a TypeError)."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.server import clean_env, free_port, migrate_and_seed, run_cli, serving

pytestmark = pytest.mark.e2e

README = Path(__file__).resolve().parents[2] / "README.md"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title></head>
<body><pre id="result"></pre>
<script>
const params = new URLSearchParams(location.search);
const base = params.get("treegate");
const key = params.get("key");
const tree = params.get("tree");
const COUNTS = "{ treeStateCounts { state count } }";
const HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }";

async function step(name, run) {
  try {
    return [name, await run()];
  } catch (error) {
    return [name, {rejected: error.name}];
  }
}

async function main() {
  const results = {};
  const steps = [
    ["query", async () => {
      const r = await fetch(`${base}/graphql`, {
        method: "POST",
        headers: {"Content-Type": "application/json", "Authorization": `Bearer ${key}`},
        body: JSON.stringify({query: COUNTS}),
      });
      const body = await r.json();
      return {status: r.status, states: body.data.treeStateCounts.length,
              requestId: r.headers.get("X-Request-Id")};
    }],
    ["mutation", async () => {
      const r = await fetch(`${base}/graphql`, {
        method: "POST",
        headers: {"Content-Type": "application/json", "X-API-Key": key},
        body: JSON.stringify({query: HALT, variables: {id: tree}}),
      });
      const body = await r.json();
      return {status: r.status, typename: body.data.haltTree.__typename};
    }],
    ["poll", async () => {
      const url = `${base}/graphql?` + new URLSearchParams({query: COUNTS});
      const first = await fetch(url, {
        cache: "no-store",
        headers: {"Authorization": `Bearer ${key}`},
      });
      await first.json();
      const etag = first.headers.get("ETag");
      const again = await fetch(url, {
        cache: "no-store",
        headers: {"Authorization": `Bearer ${key}`, "If-None-Match": etag},
      });
      return {first: first.status, etag: etag, again: again.status,
              againEtag: again.headers.get("ETag")};
    }],
    ["simple", async () => {
      // No header of its own: a request the browser sends without a preflight.
      const r = await fetch(`${base}/healthz`);
      return {status: r.status, body: await r.json()};
    }],
  ];
  for (const [name, run] of steps) {
    const [, outcome] = await step(name, run);
    results[name] = outcome;
  }
  document.getElementById("result").textContent = JSON.stringify(results);
}
main();
</script></body></html>
"""


@contextmanager
def static_site(directory: Path) -> Iterator[str]:
    """A second origin: a plain HTTP server of `directory` on another port of 127.0.0.1."""
    handler = partial(SimpleHTTPRequestHandler, directory=str(directory))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def growing_tree(db: Path) -> str:
    with closing(sqlite3.connect(db)) as conn:
        (tree,) = conn.execute(
            "SELECT message_tree_id FROM message_tree_state WHERE state = 'growing' LIMIT 1"
        ).fetchone()
    text = str(tree)
    if "-" in text:
        return text
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def state_of(db: Path, tree: str) -> str:
    with closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT message_tree_id, state FROM message_tree_state").fetchall()
    return next(
        str(state) for found, state in rows if str(found).replace("-", "") == tree.replace("-", "")
    )


def page_results(
    browser: webdriver.Chrome, tmp_path: Path, cors_origins: str | None
) -> tuple[dict[str, Any], str]:
    """Serves the page from a second origin and Treegate (CORS origins: `cors_origins`, or the
    page's own origin when None); returns what the page's calls reported, and the state the
    tree its mutation halts is in afterwards."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "index.html").write_text(PAGE)
    db = tmp_path / "cors.db"
    env = {**clean_env(), "TREEGATE_DATABASE_URL": f"sqlite:///{db}"}
    migrate_and_seed(env, 20)
    created = run_cli(env, "keys", "create", "--name", "frontend", "--role", "moderator")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    with static_site(site) as page_origin:
        env["TREEGATE_CORS_ORIGINS"] = cors_origins or page_origin
        with serving(env, tmp_path / "server.log", free_port()) as base:
            assert base != page_origin
            tree = growing_tree(db)
            query = urlencode({"treegate": base, "key": key, "tree": tree})
            browser.get(f"{page_origin}/index.html?{query}")
            text = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "result").text)
    results: dict[str, Any] = json.loads(text)
    return results, state_of(db, tree)


def test_a_page_on_an_allowed_origin_queries_writes_and_polls(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    results, state = page_results(browser, tmp_path, None)
    assert state == "halted_by_moderator"
    assert results["query"]["status"] == 200
    assert results["query"]["states"] > 0
    assert results["query"]["requestId"]  # an exposed header
    assert results["mutation"] == {"status": 200, "typename": "TransitionApplied"}
    poll = results["poll"]
    assert poll["first"] == 200
    assert poll["etag"].startswith('"')  # exposed to the page
    assert poll["again"] == 304
    assert poll["againEtag"] == poll["etag"]
    assert results["simple"] == {"status": 200, "body": {"status": "ok"}}


def test_a_page_on_another_origin_is_blocked(browser: webdriver.Chrome, tmp_path: Path) -> None:
    results, state = page_results(browser, tmp_path, "http://127.0.0.1:1")
    assert state == "growing"  # the mutation's preflight failed: it was never sent
    blocked = {"rejected": "TypeError"}
    assert results == {
        "query": blocked,
        "mutation": blocked,
        "poll": blocked,
        "simple": blocked,
    }


def readme_example() -> str:
    """The README's `fetch` example, as a page runs it."""
    blocks: list[str] = re.findall(r"```js\n(.*?)```", README.read_text(), re.DOTALL)
    (block,) = blocks
    assert "console.log(data.treeStateCounts);" in block
    return block.replace("console.log(", "report(")


def test_the_readme_example_runs_in_a_page_on_another_origin(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    db = tmp_path / "readme.db"
    env = {**clean_env(), "TREEGATE_DATABASE_URL": f"sqlite:///{db}", "TREEGATE_ENV": "production"}
    migrate_and_seed(env, 20)
    created = run_cli(env, "keys", "create", "--name", "frontend", "--role", "reader")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    site = tmp_path / "site"
    site.mkdir()
    with static_site(site) as page_origin:
        env["TREEGATE_CORS_ORIGINS"] = page_origin
        with serving(env, tmp_path / "server.log", free_port()) as base:
            script = re.sub(
                r'const TREEGATE = ".*?";',
                f"const TREEGATE = {json.dumps(base)};",
                readme_example(),
            )
            script = re.sub(r'const KEY = ".*?";', f"const KEY = {json.dumps(key)};", script)
            (site / "readme.html").write_text(
                "<!doctype html><html><body><pre id='result'></pre><script type='module'>\n"
                "const report = (value) => {\n"
                "  document.getElementById('result').textContent = JSON.stringify(value);\n"
                "};\n"
                f"{script}</script></body></html>"
            )
            browser.get(f"{page_origin}/readme.html")
            text = WebDriverWait(browser, 20).until(lambda d: d.find_element(By.ID, "result").text)
    with closing(sqlite3.connect(db)) as conn:
        expected = dict(
            conn.execute("SELECT state, count(*) FROM message_tree_state GROUP BY state")
        )
    shown = {row["state"].lower(): row["count"] for row in json.loads(text) if row["count"]}
    assert shown == expected
