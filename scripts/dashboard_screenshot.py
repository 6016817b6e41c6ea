"""Take the README's screenshot of the dashboard, on the demo data `make run` serves.

    python scripts/dashboard_screenshot.py --trees 2000 --output docs/dashboard.png

(`make screenshot` runs it with the Makefile's DEMO_TREES.) A fresh SQLite database is migrated
and seeded as `make run` does (same command, same default seed) and served in development mode.
In Debian's headless Chromium, with a moderator key entered, the page halts one growing tree with
a reason (so that the halted trees and the newest transitions show it), then opens the growing tree
with the most messages in the tree view; the screenshot is taken once that view and the rest of
the page have drawn.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import httpx
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import chromium  # noqa: E402
from tests.e2e.server import clean_env, migrate_and_seed, run_cli, serving  # noqa: E402

GROWING = (
    "{ messageTreeStates(filter: {states: [GROWING]}, first: 100) "
    "{ nodes { messageTreeId messageCount } } }"
)
WIDTH, MAX_HEIGHT = 1400, 2000


def open_tree(browser: webdriver.Chrome, tree: str) -> None:
    """Type the id into the page's box and wait for the tree view to draw it."""
    box = browser.find_element(By.ID, "tree-id")
    box.clear()
    box.send_keys(tree)
    browser.find_element(By.CSS_SELECTOR, "#open-tree button").click()
    WebDriverWait(browser, 30).until(
        lambda d: (
            d.find_element(By.ID, "tree-view").get_attribute("data-shown") == tree
            and d.find_elements(By.CSS_SELECTOR, "#tree-actions button")
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        env = clean_env() | {"TREEGATE_DATABASE_URL": f"sqlite:///{work / 'demo.db'}"}
        migrate_and_seed(env, args.trees)
        created = run_cli(env, "keys", "create", "--name", "moderator", "--role", "moderator")
        if created.returncode != 0:
            print(created.stderr, file=sys.stderr)
            return 1
        key = created.stdout.strip().splitlines()[-1]
        with serving(env, work / "server.log") as base, chromium(work) as browser:
            nodes = httpx.post(f"{base}/graphql", json={"query": GROWING}).json()["data"][
                "messageTreeStates"
            ]["nodes"]
            by_size = sorted(nodes, key=lambda n: (-n["messageCount"], n["messageTreeId"]))
            shown, halted = by_size[0]["messageTreeId"], by_size[-1]["messageTreeId"]
            browser.get(f"{base}/dashboard")
            browser.find_element(By.ID, "key").send_keys(key)
            browser.execute_script(
                "document.getElementById('key').dispatchEvent(new Event('change'))"
            )
            WebDriverWait(browser, 30).until(
                lambda d: d.find_element(By.ID, "role").get_attribute("data-role") == "MODERATOR"
            )
            open_tree(browser, halted)
            browser.find_element(By.ID, "tree-reason").send_keys("off-topic prompt")
            browser.find_element(
                By.CSS_SELECTOR, '#tree-actions button[data-action="halt"]'
            ).click()
            WebDriverWait(browser, 30).until(
                lambda d: (
                    d.find_element(By.ID, "tree-answer").get_attribute("data-outcome")
                    == "TransitionApplied"
                    and d.find_elements(By.CSS_SELECTOR, f'#halted tr[data-tree="{halted}"]')
                )
            )
            open_tree(browser, shown)
            # A whole poll after the tree drew, so that every part of the page is current.
            polled = browser.find_element(By.ID, "status").get_attribute("data-refreshed-at")
            WebDriverWait(browser, 30).until(
                lambda d: (
                    d.find_element(By.ID, "status").get_attribute("data-refreshed-at") != polled
                )
            )
            # The whole page in one image: a viewport as tall as the page (within reason); the
            # window is taller than its viewport by what the browser draws around it.
            height = min(
                int(browser.execute_script("return document.documentElement.scrollHeight")),
                MAX_HEIGHT,
            )
            browser.set_window_size(WIDTH, height)
            shown_height = int(browser.execute_script("return window.innerHeight"))
            browser.set_window_size(WIDTH, 2 * height - shown_height)
            browser.execute_script("window.scrollTo(0, 0)")
            args.output.parent.mkdir(parents=True, exist_ok=True)
            if not browser.save_screenshot(str(args.output)):
                print("the screenshot could not be saved", file=sys.stderr)
                return 1
    print(f"wrote {args.output} ({args.trees} demo trees; tree view of {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
