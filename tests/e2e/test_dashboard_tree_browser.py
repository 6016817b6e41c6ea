"""The dashboard's tree view in real headless Chromium, against a real server that runs only
registered documents (the page's own are built in): a known tree drawn as an indented tree, and
halt, resume and transitions sent through the page with the role of the key entered."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy.ext.asyncio import create_async_engine

from gql.dashboard import DOCUMENTS
from gql.settings import Settings
from schema.build import build_schema
from tests.e2e.server import clean_env, migrate_and_seed, run_cli, serving
from tests.message_trees import KNOWN, Tree, insert

pytestmark = pytest.mark.e2e

WAIT_S = 30  # a bound for a loaded machine, never a pause: every wait ends on a DOM condition
# The known tree, deleted messages included, as `messages` orders it: depth-first, replies by
# rank (unranked last), then by creation date (tests/message_trees.py): the deleted reply was
# written between the two unranked ones.
ORDER = [
    ("root", 0),
    ("a_best", 1),
    ("p_spam", 2),
    ("a_under_spam", 3),
    ("a_second", 1),
    ("p_follow", 2),
    ("a_deep", 3),
    ("a_tie_early", 1),
    ("a_deleted", 1),
    ("a_tie_late", 1),
]
ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_the_pages_documents_are_valid_and_within_the_default_limits() -> None:
    """Checked without a browser, so that a schema change that breaks the page says which."""
    schema = build_schema()
    schema.configure(Settings().document_limits, introspection=False, hide_suggestions=True)
    for name, document in DOCUMENTS.items():
        checked = schema.check_document(document)
        assert not isinstance(checked, list), (name, [e.message for e in checked])


def new_key(env: dict[str, str], name: str, role: str) -> str:
    created = run_cli(env, "keys", "create", "--name", name, "--role", role)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


async def insert_known(db: Path) -> Tree:
    engine = create_async_engine(f"sqlite+aiosqlite:///{db}")
    try:
        async with engine.begin() as conn:
            return await insert(conn, KNOWN, state="growing")
    finally:
        await engine.dispose()


@contextmanager
def dashboard(
    tmp_path: Path, *, env: str, keys: dict[str, str]
) -> Iterator[tuple[str, Path, dict[str, str], Tree]]:
    """A served database of a few demo trees and the known one; yields the base URL, the
    database, the keys (name -> key, of the role given) and the known tree."""
    db = tmp_path / "tree-view.db"
    environment = {
        **clean_env(),
        "TREEGATE_DATABASE_URL": f"sqlite:///{db}",
        "TREEGATE_ENV": env,
        "TREEGATE_PERSISTED_QUERIES": "allowlist",
    }
    migrate_and_seed(environment, 20)
    tree = asyncio.run(insert_known(db))
    made = {name: new_key(environment, name, role) for name, role in keys.items()}
    with serving(environment, tmp_path / "server.log") as base:
        yield base, db, made, tree


def enter_key(driver: webdriver.Chrome, key: str, role: str) -> None:
    """Type the key as a user does (the page acts on `change`) and wait until the page has
    learnt what it may do."""
    field = driver.find_element(By.ID, "key")
    field.clear()
    if key:
        field.send_keys(key)
    driver.execute_script("document.getElementById('key').dispatchEvent(new Event('change'))")
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.ID, "role").get_attribute("data-role") == role
    )


def open_by_typing(driver: webdriver.Chrome, typed: str, tree_id: str) -> None:
    box = driver.find_element(By.ID, "tree-id")
    box.clear()
    box.send_keys(typed)
    driver.find_element(By.CSS_SELECTOR, "#open-tree button").click()
    wait_shown(driver, tree_id)


def wait_shown(driver: webdriver.Chrome, tree_id: str) -> None:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: (
            d.find_element(By.ID, "tree-view").get_attribute("data-shown") == tree_id
            and d.find_element(By.ID, "tree-content").is_displayed()
            and d.find_elements(By.CSS_SELECTOR, "#tree-messages li")
        )
    )


def shown_state(driver: webdriver.Chrome) -> str | None:
    return driver.find_element(By.ID, "tree-state").get_attribute("data-state")


def action_buttons(driver: webdriver.Chrome) -> set[str]:
    """The tree view's buttons by what they do: `halt`, `resume`, `transition:<STATE>` (read
    in one script)."""
    found: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#tree-actions button')].map(b =>"
        " b.dataset.to ? `${b.dataset.action}:${b.dataset.to}` : b.dataset.action);"
    )
    return set(found)


def click(driver: webdriver.Chrome, css: str, text: str | None = None) -> None:
    """Click the first element `css` finds (once there is one), with `text` if given; found
    again if a poll redrew it between finding and clicking."""

    def clicked(d: webdriver.Chrome) -> bool:
        found = d.find_elements(By.CSS_SELECTOR, css)
        if not found:
            return False
        if text is not None:
            assert found[0].text == text
        found[0].click()
        return True

    WebDriverWait(driver, WAIT_S, ignored_exceptions=[StaleElementReferenceException]).until(
        clicked
    )


def row_cells(driver: webdriver.Chrome, css: str) -> list[str] | None:
    """The texts of the cells of the first row `css` finds, read in one script."""
    cells: list[str] | None = driver.execute_script(
        "const tr = document.querySelector(arguments[0]);"
        "return tr && [...tr.cells].map(c => c.textContent);",
        css,
    )
    return cells


def wait_answer(driver: webdriver.Chrome, outcome: str) -> str:
    WebDriverWait(driver, WAIT_S).until(
        lambda d: d.find_element(By.ID, "tree-answer").get_attribute("data-outcome") == outcome
    )
    return str(driver.find_element(By.ID, "tree-answer").text)


def drawn_messages(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """The messages as drawn, read in one script (a poll may redraw them between two reads)."""
    rows: list[dict[str, Any]] = driver.execute_script(
        "return [...document.querySelectorAll('#tree-messages li')].map(li => ({"
        "id: li.dataset.messageId, left: li.getBoundingClientRect().left,"
        "role: li.querySelector('.role').textContent, text: li.querySelector('.text').textContent,"
        "tags: [...li.querySelectorAll('.tag')].map(t => t.textContent)}));"
    )
    return rows


def database_log(db: Path, tree: Tree) -> list[tuple[str, str, str | None, str | None]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT to_state, operation, actor, reason FROM treegate_transition "
            "WHERE message_tree_id = ? ORDER BY sequence",
            (tree.id.hex,),
        ).fetchall()


def database_state(db: Path, tree: Tree) -> str:
    with closing(sqlite3.connect(db)) as conn:
        (state,) = conn.execute(
            "SELECT state FROM message_tree_state WHERE message_tree_id = ?", (tree.id.hex,)
        ).fetchone()
        return str(state)


def idempotency_keys(db: Path, scope: str) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT operation, key FROM treegate_idempotency WHERE scope = ? ORDER BY created_at",
            (scope,),
        ).fetchall()


def severe_errors(driver: webdriver.Chrome) -> list[dict[str, Any]]:
    """Script errors and failed requests, but the 401s of a production page before its key."""
    return [
        e
        for e in driver.get_log("browser")  # type: ignore[no-untyped-call]
        if e["level"] == "SEVERE" and "401" not in e["message"]
    ]


def test_a_moderator_views_a_known_tree_then_halts_and_resumes_it_through_the_page(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    with dashboard(tmp_path, env="production", keys={"mod": "moderator"}) as (
        base,
        db,
        keys,
        tree,
    ):
        tree_id = str(tree.id)
        wait = WebDriverWait(browser, WAIT_S)
        browser.get(f"{base}/dashboard")
        enter_key(browser, keys["mod"], "MODERATOR")
        # Typed in the box (here without dashes, as some tools print ids), opened whole.
        open_by_typing(browser, tree.id.hex.upper(), tree_id)
        assert browser.find_element(By.ID, "tree-title").text == tree_id

        # The messages: every one, deleted included, in the tree's order, indented by depth.
        drawn = drawn_messages(browser)
        assert tree.names([m["id"] for m in drawn]) == [name for name, _ in ORDER]
        step = drawn[1]["left"] - drawn[0]["left"]
        assert step > 10
        for message, (name, depth) in zip(drawn, ORDER, strict=True):
            assert message["left"] - drawn[0]["left"] == pytest.approx(depth * step, abs=1), name
        by_name = dict(zip(tree.names([m["id"] for m in drawn]), drawn, strict=True))
        for row in KNOWN:
            shown = by_name[row.name]
            assert shown["role"] == row.role
            assert shown["text"] == row.text
            review = {True: "accepted", False: "rejected", None: "in review"}[row.review_result]
            assert review in shown["tags"], row.name
            assert (f"rank {row.rank}" in shown["tags"]) == (row.rank is not None), row.name
            assert ("deleted" in shown["tags"]) == row.deleted, row.name

        # Its state, whether it is terminal, what the table allows and what this key may do.
        assert shown_state(browser) == "GROWING"
        assert browser.find_element(By.ID, "tree-terminal").get_attribute("data-terminal") == (
            "false"
        )
        allowed = browser.execute_script(
            "return [...document.querySelectorAll('#tree-allowed li')].map(li => li.dataset.state)"
        )
        assert sorted(allowed) == ["ABORTED_LOW_GRADE", "HALTED_BY_MODERATOR", "RANKING"]
        assert set(action_buttons(browser)) == {
            "transition:RANKING",
            "transition:ABORTED_LOW_GRADE",
            "halt",
        }
        assert "no transition in the log" in browser.find_element(By.ID, "tree-history").text

        # Halt, with a reason: the answer, the new state, the history and the halted list.
        browser.find_element(By.ID, "tree-reason").send_keys("spam in the replies")
        click(browser, '#tree-actions button[data-action="halt"]')
        answer = wait_answer(browser, "TransitionApplied")
        assert "GROWING → HALTED_BY_MODERATOR" in answer
        assert "by mod" in answer
        wait.until(lambda d: shown_state(d) == "HALTED_BY_MODERATOR")
        assert database_state(db, tree) == "halted_by_moderator"
        assert database_log(db, tree) == [
            ("halted_by_moderator", "haltTree", "mod", "spam in the replies")
        ]
        ((operation, key),) = idempotency_keys(db, "mod")
        assert operation == "haltTree"
        assert ID.match(key), key
        wait.until(
            lambda d: (
                d.find_element(By.ID, "tree-terminal").get_attribute("data-terminal") == "true"
            )
        )
        wait.until(lambda d: set(action_buttons(d)) == {"resume"})
        newest = row_cells(browser, "#tree-history tr")  # drawn with the state
        assert newest is not None
        assert newest[1:5] == [
            "GROWING → HALTED_BY_MODERATOR",
            "HALT_TREE",
            "mod",
            "spam in the replies",
        ]
        halted = wait.until(lambda d: row_cells(d, f'#halted tr[data-tree="{tree_id}"]'))
        assert halted is not None
        assert halted[0] == tree_id
        assert halted[2:4] == ["mod", "spam in the replies"]

        # Resume: the tree won the lottery before, so it grows again.
        click(browser, '#tree-actions button[data-action="resume"]')
        answer = wait_answer(browser, "TransitionApplied")
        assert "HALTED_BY_MODERATOR → GROWING" in answer
        wait.until(lambda d: shown_state(d) == "GROWING")
        assert database_state(db, tree) == "growing"
        assert [row[:3] for row in database_log(db, tree)] == [
            ("halted_by_moderator", "haltTree", "mod"),
            ("growing", "resumeTree", "mod"),
        ]
        keys_used = idempotency_keys(db, "mod")
        assert [operation for operation, _ in keys_used] == ["haltTree", "resumeTree"]
        assert len({key for _, key in keys_used}) == 2
        wait.until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, f'#halted tr[data-tree="{tree_id}"]')
        )

        # The newest transitions show the tree's id whole, and it opens the tree view.
        browser.find_element(By.ID, "tree-close").click()
        wait.until(lambda d: not d.find_element(By.ID, "tree-view").is_displayed())
        click(browser, f'#log tr[data-tree="{tree_id}"] a.tree', text=tree_id)
        wait_shown(browser, tree_id)
        assert browser.execute_script("return location.hash") == f"#tree={tree_id}"
        assert not severe_errors(browser)


def test_a_reader_sees_no_actions_an_operator_sees_the_tables_and_refusals_are_shown(
    browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # Development mode: a caller without a key reads as a reader.
    with dashboard(tmp_path, env="development", keys={"screen": "reader", "ops": "operator"}) as (
        base,
        db,
        keys,
        tree,
    ):
        tree_id = str(tree.id)
        browser.get(f"{base}/dashboard#tree={tree_id}")
        enter_key(browser, "", "READER")
        wait_shown(browser, tree_id)
        assert not action_buttons(browser)
        assert not browser.find_elements(By.ID, "tree-reason")

        enter_key(browser, keys["screen"], "READER")
        wait_shown(browser, tree_id)
        assert not action_buttons(browser)
        assert not browser.find_elements(By.ID, "tree-reason")
        assert len(browser.find_elements(By.CSS_SELECTOR, "#tree-allowed li")) == 3
        # A page that offered the halt anyway (a stale one, say) gets FORBIDDEN, and shows it.
        browser.execute_script("window.treegateDashboard.act('halt')")
        answer = wait_answer(browser, "FORBIDDEN")
        assert "haltTree needs role moderator" in answer
        assert "has role reader" in answer

        # An id of no tree, and text that is no id, say so in the view.
        nowhere = str(uuid.uuid4())
        browser.find_element(By.ID, "tree-id").send_keys(nowhere)
        browser.find_element(By.CSS_SELECTOR, "#open-tree button").click()
        WebDriverWait(browser, WAIT_S).until(
            lambda d: d.find_element(By.ID, "tree-error").text == f"There is no tree {nowhere}."
        )
        assert not browser.find_element(By.ID, "tree-content").is_displayed()
        browser.get(f"{base}/dashboard#tree=not-a-tree")
        WebDriverWait(browser, WAIT_S).until(
            lambda d: "is not a tree id" in d.find_element(By.ID, "tree-error").text
        )
        browser.get(f"{base}/dashboard#tree={tree_id}")

        enter_key(browser, keys["ops"], "OPERATOR")
        WebDriverWait(browser, WAIT_S).until(
            lambda d: (
                set(action_buttons(d)) == {"transition:RANKING", "transition:ABORTED_LOW_GRADE"}
            )
        )
        # The table's guard holds the tree in GROWING: 8 accepted messages, the goal is 12.
        click(browser, '#tree-actions button[data-to="RANKING"]')
        answer = wait_answer(browser, "TransitionRejected")
        assert answer.startswith("Rejected (GUARD_FAILED)")
        assert shown_state(browser) == "GROWING"
        # The role probes and the refusals changed nothing.
        assert database_state(db, tree) == "growing"
        assert database_log(db, tree) == []
        assert [operation for operation, _ in idempotency_keys(db, "ops")] == ["transitionTree"]
        assert idempotency_keys(db, "screen") == []
        assert not severe_errors(browser)
