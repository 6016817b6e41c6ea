"""GraphiQL in a real headless browser, against the real server, with no network beyond it.

Drives Debian's Chromium through Debian's chromedriver (`make browser` installs both; a test tool's
own browser download cannot work on networks that reach only package registries). Selenium is given
both paths, so Selenium Manager never runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.e2e.server import SEEDED_TREES, clean_env, migrate_and_seed, serving

pytestmark = pytest.mark.e2e

SCREENSHOT = Path(__file__).resolve().parents[1] / "artifacts" / "graphiql.png"
QUERY = "{ treeStateCounts { state count } }"
QUERY_EDITOR = ".graphiql-query-editor .CodeMirror"
RESPONSE_EDITOR = ".graphiql-response .CodeMirror"
# Schemes that never leave the browser.
LOCAL_SCHEMES = {"data", "blob", "about", "chrome", "chrome-extension", "devtools"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    """`make run` on an SQLite file: migrate, seed, serve; yields the base URL."""
    env = clean_env()
    env["TREEGATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'treegate.db'}"
    migrate_and_seed(env, SEEDED_TREES)
    with serving(env, tmp_path / "server.log") as base:
        yield base


def _editor_value(driver: webdriver.Chrome, selector: str) -> str:
    """The whole text of a GraphiQL editor (CodeMirror renders only the lines in view)."""
    value: str = driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.CodeMirror.getValue() : '';",
        selector,
    )
    return value


def _log(driver: webdriver.Chrome, kind: str) -> list[dict[str, Any]]:
    """Chromium's `performance` (DevTools events) or `browser` (console) log since the last call."""
    entries: list[dict[str, Any]] = driver.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def _requested_urls(driver: webdriver.Chrome) -> list[str]:
    """Every URL the page requested so far, from Chromium's DevTools network events."""
    urls = []
    for entry in _log(driver, "performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
        elif message["method"] == "Network.webSocketCreated":
            urls.append(message["params"]["url"])
    return urls


def test_graphiql_runs_a_query_with_no_network_beyond_the_server(
    browser: webdriver.Chrome, server: str
) -> None:
    browser.get(f"{server}/graphql")
    wait = WebDriverWait(browser, 30)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, QUERY_EDITOR))
    # The schema loaded too: the explorer and the docs need it, and so does the run button.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".graphiql-execute-button"))

    # Type the query as a person would: replace the welcome text, then press the run button.
    browser.find_element(By.CSS_SELECTOR, QUERY_EDITOR).click()
    textarea = browser.find_element(By.CSS_SELECTOR, f"{QUERY_EDITOR} textarea")
    textarea.send_keys(Keys.CONTROL, "a")
    textarea.send_keys(Keys.DELETE)
    textarea.send_keys(QUERY)
    assert _editor_value(browser, QUERY_EDITOR) == QUERY
    browser.find_element(By.CSS_SELECTOR, ".graphiql-execute-button").click()

    wait.until(lambda d: "treeStateCounts" in _editor_value(d, RESPONSE_EDITOR))
    result = json.loads(_editor_value(browser, RESPONSE_EDITOR))
    counts = result["data"]["treeStateCounts"]
    assert sum(c["count"] for c in counts) == SEEDED_TREES, result
    assert '"treeStateCounts"' in browser.find_element(By.CSS_SELECTOR, ".graphiql-response").text

    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOT))

    # Nothing but the server: every page request (scripts, styles, the schema, the query)...
    server_host = urlsplit(server).netloc
    urls = _requested_urls(browser)
    network = [u for u in urls if urlsplit(u).scheme not in LOCAL_SCHEMES]
    assert network, urls
    elsewhere = [u for u in network if urlsplit(u).netloc != server_host]
    assert not elsewhere, f"the page requested other hosts: {elsewhere}"
    assert sum("/graphql/static/graphiql/" in u for u in network) == 7, network
    # ... and every file the DOM names.
    named: list[str] = browser.execute_script(
        "return [...document.querySelectorAll('script[src], link[href]')]"
        ".map(e => e.src || e.href);"
    )
    assert named
    outside = [u for u in named if urlsplit(u).netloc != server_host]
    assert all(urlsplit(u).scheme == "data" for u in outside), outside
    # No script failed to load or run (an SRI mismatch, for one, would show here).
    errors = [e for e in _log(browser, "browser") if e["level"] == "SEVERE"]
    assert not errors, errors
