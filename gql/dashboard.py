"""The dashboard at GET /dashboard: one HTML page, no build step, no network beyond the server.

It polls the GraphQL API over GET with persisted queries (its documents are built in: their hashes
are known to the server in either persisted-query mode, so the page works under an allow-list
and without introspection) and `If-None-Match`, so an unchanged answer costs a 304 and no body.
"""

from __future__ import annotations

import json
from pathlib import Path

from db.persisted import sha256

DOCUMENTS = {
    "counts": (
        "query DashboardCounts($langs: [String!]) { "
        "byState: treeStateCounts(groupBy: [STATE], filter: {langs: $langs}) { state count } "
        "active: treeStateCounts(groupBy: [], filter: {active: true, langs: $langs}) { count } "
        "byLang: treeStateCounts(groupBy: [LANG]) { lang count } }"
    ),
    "lottery": (
        "query DashboardLottery { lotteryStatus { lang waiting growing maxActiveTrees freeSlots } }"
    ),
    "log": (
        "query DashboardLog($after: String) { transitionLog(after: $after, first: 100) { "
        "nodes { sequence messageTreeId fromState toState operation actor at } "
        "pageInfo { hasNextPage endCursor } } }"
    ),
}
"""The page's documents by name; registered as persisted queries when the app starts."""

PAGE = Path(__file__).parent / "static" / "dashboard.html"


def render() -> str:
    hashes = {name: sha256(document) for name, document in DOCUMENTS.items()}
    # Hex digests under plain names: nothing in them needs escaping inside the script element.
    return PAGE.read_text(encoding="utf-8").replace("__TREEGATE_QUERIES__", json.dumps(hashes))
