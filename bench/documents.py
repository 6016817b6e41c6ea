"""The benchmark's GraphQL documents: Treegate's `bench/queries/*.graphql` and PostGraphile's
equivalents, `bench/postgraphile/queries/*.graphql` (the same trees, columns and order in
PostGraphile's own schema: `allMessageTreeStates(condition: ..., orderBy: PRIMARY_KEY_ASC)`,
`messageTreeStateByMessageTreeId`, the root message through the foreign key
`message_tree_state.message_tree_id -> message.id` as `messageByMessageTreeId`, and a tree's
messages as `allMessages(condition: {messageTreeId})` in creation order, which
`bench.agreement` puts in Treegate's depth-first order).

The harness sends them as they are; the raw server recognises Treegate's by their exact text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
QUERIES_DIR = BENCH_DIR / "queries"
POSTGRAPHILE_QUERIES_DIR = BENCH_DIR / "postgraphile" / "queries"

FILES = {
    "Q1": "q1_page.graphql",
    "Q2": "q2_tree.graphql",
    "Q3": "q3_counts.graphql",
    "Q4": "q4_page_root.graphql",
    "Q6": "q6_tree_messages.graphql",
    "Q5_DRAW": "q5_draw.graphql",
    "Q5_ABORT": "q5_abort.graphql",
}
POSTGRAPHILE_FILES = {
    "Q1": "q1_page.graphql",
    "Q2": "q2_tree.graphql",
    "Q4": "q4_page_root.graphql",
    "Q6": "q6_tree_messages.graphql",
}
"""The queries PostGraphile answers too (amber has no grouped counts for Q3, and Q5's
lottery is Treegate's own)."""

_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")


def load(name: str, dialect: str = "treegate") -> str:
    """The text of one document, e.g. `load("Q1")` or `load("Q1", "postgraphile")`."""
    if dialect == "postgraphile":
        return (POSTGRAPHILE_QUERIES_DIR / POSTGRAPHILE_FILES[name]).read_text()
    if dialect != "treegate":
        raise ValueError(f"unknown dialect {dialect!r}")
    return (QUERIES_DIR / FILES[name]).read_text()


def operation_name(document: str) -> str:
    found = _OPERATION.match(document)
    if found is None:
        raise ValueError("a benchmark document must be a named operation")
    return found.group(1)


def request_body(
    name: str, variables: dict[str, Any] | None = None, dialect: str = "treegate"
) -> dict[str, Any]:
    """The JSON body of a POST /graphql for document `name`."""
    document = load(name, dialect)
    body: dict[str, Any] = {"query": document, "operationName": operation_name(document)}
    if variables is not None:
        body["variables"] = variables
    return body
