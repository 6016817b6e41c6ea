"""Fixtures of the end-to-end tests: a database for a real server on each backend, and a real
headless Chromium (Debian's, driven by chromedriver)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from selenium import webdriver
from sqlalchemy.engine import URL

from tests.databases import PostgresUnavailable, postgres_database
from tests.e2e.browser import CHROMEDRIVER, CHROMIUM, chromium
from tests.e2e.server import clean_env


@pytest.fixture
def browser(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[webdriver.Chrome]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        pytest.fail(
            f"the browser tests need Debian's chromium and chromium-driver, but "
            f"{' and '.join(missing)} is missing: run `make browser` (or `apt-get install "
            "chromium chromium-driver`)",
            pytrace=False,
        )
    # Should Selenium Manager ever run, it must download nothing.
    monkeypatch.setenv("SE_OFFLINE", "true")
    with chromium(tmp_path) as driver:
        assert driver.service.path == str(CHROMEDRIVER)
        yield driver


@pytest.fixture(params=["sqlite", "postgresql"])
async def server_env(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    env = clean_env()
    if request.param == "sqlite":
        env["TREEGATE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'treegate.db'}"
        yield env
        return
    try:
        async with postgres_database("treegate_e2e") as url:
            env["TREEGATE_DATABASE_URL"] = URL.render_as_string(url, hide_password=False)
            yield env
    except PostgresUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
