"""The dashboard at GET /dashboard: one HTML page, no build step, no network beyond the server.

It polls the GraphQL API over GET with persisted queries (its documents are built in: their hashes
are known to the server in either persisted-query mode, so the page works under an allow-list
and without introspection) and `If-None-Match`, so an unchanged answer costs a 304 and no body.
Its mutations are built in too, and sent over POST by hash with an idempotency key; the server
checks the key's role as for any other client.

The page learns what the entered key may do from two probes, mutations that can change nothing:
each names the nil tree id and a reason holding a NUL character. The role a mutation needs is
checked before anything else (a caller without it gets FORBIDDEN and learns nothing about the
tree); a caller with it gets BAD_USER_INPUT for the reason, before any transaction begins.
"""

from __future__ import annotations

import json
from pathlib import Path

from db.persisted import sha256

_RESULT = (
    "__typename "
    "... on TransitionApplied { tree { messageTreeId state } "
    "transition { sequence fromState toState operation actor reason at } } "
    "... on TransitionRejected { currentState requestedState reason message } "
    "... on TreeNotFound { message }"
)

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
    "halted": (
        "query DashboardHalted($langs: [String!]) { messageTreeStates("
        "filter: {states: [HALTED_BY_MODERATOR], langs: $langs}, first: 100) { totalCount "
        "nodes { messageTreeId lang transitions(first: 1) { operation actor reason at } } } }"
    ),
    "tree": (
        "query DashboardTree($id: UUID!) { messageTreeState(messageTreeId: $id) { "
        "messageTreeId state isTerminal active lang goalTreeSize origin wonPromptLotteryDate "
        "allowedTransitions messageCount "
        "transitions(first: 50) { sequence fromState toState operation actor reason at } "
        "messages(includeDeleted: true) { "
        "id parentId depth role text reviewResult rank deleted synthetic } } }"
    ),
    "machine": (
        "query DashboardMachine { stateMachine { "
        "transitions { fromState toState role operation guardDescription } } }"
    ),
    "transition": (
        "mutation DashboardTransition($id: UUID!, $to: State!, $expected: State, "
        "$reason: String, $key: String) { transitionTree(input: {messageTreeId: $id, to: $to, "
        "expectedState: $expected, reason: $reason, idempotencyKey: $key}) { " + _RESULT + " } }"
    ),
    "halt": (
        "mutation DashboardHalt($id: UUID!, $reason: String, $key: String) { "
        "haltTree(input: {messageTreeId: $id, reason: $reason, idempotencyKey: $key}) { "
        + _RESULT
        + " } }"
    ),
    "resume": (
        "mutation DashboardResume($id: UUID!, $reason: String, $key: String) { "
        "resumeTree(input: {messageTreeId: $id, reason: $reason, idempotencyKey: $key}) { "
        + _RESULT
        + " } }"
    ),
    "viewer": "query DashboardViewer { viewer { role } }",
}
"""The page's documents by name; registered as persisted queries when the app starts."""

PAGE = Path(__file__).parent / "static" / "dashboard.html"


def render() -> str:
    hashes = {name: sha256(document) for name, document in DOCUMENTS.items()}
    # Hex digests under plain names: nothing in them needs escaping inside the script element.
    return PAGE.read_text(encoding="utf-8").replace("__TREEGATE_QUERIES__", json.dumps(hashes))
