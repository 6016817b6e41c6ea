"""The benchmark's GraphQL documents, `bench/queries/*.graphql`.

The harness sends them as they are; the raw server recognises them by their exact text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

QUERIES_DIR = Path(__file__).resolve().parent / "queries"

FILES = {
    "Q1": "q1_page.graphql",
    "Q2": "q2_tree.graphql",
    "Q3": "q3_counts.graphql",
    "Q4": "q4_page_root.graphql",
    "Q5_DRAW": "q5_draw.graphql",
    "Q5_ABORT": "q5_abort.graphql",
}

_OPERATION = re.compile(r"^\s*(?:query|mutation)\s+(\w+)")


def load(name: str) -> str:
    """The text of one document, e.g. `load("Q1")`."""
    return (QUERIES_DIR / FILES[name]).read_text()


def operation_name(document: str) -> str:
    found = _OPERATION.match(document)
    if found is None:
        raise ValueError("a benchmark document must be a named operation")
    return found.group(1)


def request_body(name: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of a POST /graphql for document `name`."""
    document = load(name)
    body: dict[str, Any] = {"query": document, "operationName": operation_name(document)}
    if variables is not None:
        body["variables"] = variables
    return body
