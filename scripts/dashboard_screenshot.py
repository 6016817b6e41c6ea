"""Take the README's screenshot of the dashboard, on the demo data `make run` serves.

    python scripts/dashboard_screenshot.py --trees 2000 --output docs/dashboard.png

(`make screenshot` runs it with the Makefile's DEMO_TREES.) A fresh SQLite database is migrated
and seeded as `make run` does (same command, same default seed), served in development mode,
and the dashboard is shown in Debian's headless Chromium until its first poll has drawn.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.e2e.browser import chromium  # noqa: E402
from tests.e2e.server import clean_env, migrate_and_seed, serving  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, required=True)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        env = clean_env() | {"TREEGATE_DATABASE_URL": f"sqlite:///{work / 'demo.db'}"}
        migrate_and_seed(env, args.trees)
        with serving(env, work / "server.log") as base, chromium(work) as browser:
            browser.get(f"{base}/dashboard")
            WebDriverWait(browser, 30).until(
                lambda d: (
                    d.find_elements(By.CSS_SELECTOR, "#states .bar")
                    and d.find_element(By.ID, "status").get_attribute("data-refreshed-at")
                )
            )
            args.output.parent.mkdir(parents=True, exist_ok=True)
            if not browser.save_screenshot(str(args.output)):
                print("the screenshot could not be saved", file=sys.stderr)
                return 1
    print(f"wrote {args.output} ({args.trees} demo trees)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
