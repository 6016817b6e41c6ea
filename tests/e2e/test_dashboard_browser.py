"""The dashboard in real headless Chromium, against a real server in production mode (an
allow-list of persisted queries, no introspection, no anonymous reads)."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.e2e.server import clean_env, free_port, migrate_and_seed, run_cli, serving

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "dashboard.png"
INTERVAL_S = 1
HALT = "mutation($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"


def new_key(env: dict[str, str], name: str, role: str) -> str:
    created = run_cli(env, "keys", "create", "--name", name, "--role", role)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def database_counts(path: Path, lang: str | None = None) -> dict[str, int]:
    with closing(sqlite3.connect(path)) as conn:
        rows = conn.execute(
            "SELECT state, count(*) FROM message_tree_state WHERE ? IS NULL OR lang = ? "
            "GROUP BY state",
            (lang, lang),
        )
        return {state.upper(): n for state, n in rows}


def shown_counts(driver: webdriver.Chrome) -> dict[str, int]:
    """The bars as shown, read in one script (a poll may replace them between two reads)."""
    rows: list[list[object]] = driver.execute_script(
        "return [...document.querySelectorAll('#states .bar')]"
        ".map(r => [r.dataset.state, Number(r.querySelector('.n').textContent)]);"
    )
    return {str(state): int(str(n)) for state, n in rows}


def test_the_dashboard_polls_shows_changes_and_survives_an_outage(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    db = tmp_path / "dashboard.db"
    env = {
        **clean_env(),
        "TREEGATE_DATABASE_URL": f"sqlite:///{db}",
        "TREEGATE_ENV": "production",
        "TREEGATE_PERSISTED_QUERIES": "allowlist",
    }
    migrate_and_seed(env, 200)
    reader, admin = new_key(env, "screen", "reader"), new_key(env, "ops", "admin")
    # Under the allow-list the operators' mutation is registered too (the page's are built in).
    halt_file = tmp_path / "halt.graphql"
    halt_file.write_text(HALT)
    registered = run_cli(env, "persisted", "add", str(halt_file))
    assert registered.returncode == 0, registered.stderr
    port = free_port()
    log = tmp_path / "server.log"
    wait = WebDriverWait(browser, 15)
    with serving(env, log, port) as base:
        browser.get(f"{base}/dashboard")
        # Production: no key, no data; the page says so.
        wait.until(lambda d: d.find_element(By.ID, "notice").is_displayed())
        assert browser.find_element(By.ID, "notice").text.startswith(
            "This server needs an API key: enter a reader key above"
        )
        key = browser.find_element(By.ID, "key")
        change = "document.getElementById('key').dispatchEvent(new Event('change'))"
        key.send_keys("tg_not-a-key")
        browser.execute_script(change)
        wait.until(lambda d: "refused" in d.find_element(By.ID, "notice").text)
        key.clear()
        key.send_keys(reader)
        browser.execute_script(change)
        interval = browser.find_element(By.ID, "interval")
        interval.clear()
        interval.send_keys(str(INTERVAL_S))
        browser.execute_script(
            "document.getElementById('interval').dispatchEvent(new Event('change'))"
        )
        wait.until(lambda d: shown_counts(d) == database_counts(db))
        # The notice goes once the whole refresh has succeeded (after the bars): wait for it.
        wait.until(lambda d: not d.find_element(By.ID, "notice").is_displayed())
        # The key is kept in the browser: a reload needs no typing.
        browser.refresh()
        wait.until(lambda d: shown_counts(d) == database_counts(db))
        # The lottery table is fetched after the bars: wait for it, not for a moment.
        lottery_rows = wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#lottery tr"))
        assert lottery_rows
        # The language filter narrows the bars (and the lottery table) to one language.
        Select(browser.find_element(By.ID, "lang")).select_by_value("de")
        wait.until(lambda d: shown_counts(d) == database_counts(db, "de"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#lottery tr")) == 1)
        Select(browser.find_element(By.ID, "lang")).select_by_value("")
        wait.until(lambda d: shown_counts(d) == database_counts(db))

        # A transition through the API shows within one poll interval (and a little slack).
        with closing(sqlite3.connect(db)) as conn:
            (tree,) = conn.execute(
                "SELECT message_tree_id FROM message_tree_state WHERE state = 'growing' LIMIT 1"
            ).fetchone()
        tree_id = (
            str(tree)
            if "-" in str(tree)
            else f"{tree[:8]}-{tree[8:12]}-{tree[12:16]}-{tree[16:20]}-{tree[20:]}"
        )
        halted = httpx.post(
            f"{base}/graphql",
            json={"query": HALT, "variables": {"id": tree_id}},
            headers={"Authorization": f"Bearer {admin}"},
        )
        assert halted.json()["data"]["haltTree"]["__typename"] == "TransitionApplied"
        started = time.monotonic()
        WebDriverWait(browser, INTERVAL_S + 2).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, f'#log tr[data-tree="{tree_id}"]')
        )
        seen_after = time.monotonic() - started
        wait.until(lambda d: shown_counts(d) == database_counts(db))
        # Once nothing changes, the answers come back as 304s with no body.
        WebDriverWait(browser, 3 * INTERVAL_S + 2).until(
            lambda d: d.execute_script("return window.treegateDashboard.stats.notModified") >= 3
        )
        stats = browser.execute_script("return window.treegateDashboard.stats")
        # Nothing but the server: the page, its polls, no other host, no script error.
        requested = [
            json.loads(entry["message"])["message"]["params"]["request"]["url"]
            for entry in browser.get_log("performance")  # type: ignore[no-untyped-call]
            if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
        ]
        remote = [u for u in requested if urlsplit(u).scheme in ("http", "https", "ws", "wss")]
        assert remote
        assert {urlsplit(u).netloc for u in remote} == {urlsplit(base).netloc}, remote
        assert not [
            e
            for e in browser.get_log("browser")  # type: ignore[no-untyped-call]
            if e["level"] == "SEVERE" and "401" not in e["message"]
        ]
        SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(SCREENSHOT))
    # The server is gone: the notice appears...
    wait.until(lambda d: d.find_element(By.ID, "notice").is_displayed())
    assert "cannot be reached" in browser.find_element(By.ID, "notice").text
    # ... and clears by itself when it is back.
    with serving(env, log, port):
        wait.until(lambda d: not d.find_element(By.ID, "notice").is_displayed())
        wait.until(lambda d: shown_counts(d) == database_counts(db))
    print(
        f"dashboard: transition shown {seen_after:.1f} s after it was made "
        f"(poll every {INTERVAL_S} s); {stats['notModified']} of {stats['requests']} polls "
        "answered 304"
    )
