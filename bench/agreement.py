"""Checking that the servers give the same answers before any of them is loaded.

Treegate and the raw server must give the same JSON (the raw server's is written to be byte for
byte Treegate's). PostGraphile answers in its own schema: its answer is mapped onto Treegate's
shape (`as_treegate`) and compared value by value, dates compared as instants.

A tree's messages (Q6) come from PostGraphile as rows in creation order (`orderBy:
[CREATED_DATE_ASC, PRIMARY_KEY_ASC]`: it orders by indexed columns only, so not by rank). The
mapping does what a client of PostGraphile would do to get Treegate's answer: it hides deleted
messages and the ones below them, orders siblings by rank (unranked last; a stable sort, so
creation date and id break ties) and walks the tree depth-first from the root. Only the
agreement check does this, never the load.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

VOLATILE_KEYS = frozenset(
    {"messageTreeId", "sequence", "at", "wonPromptLotteryDate", "growingBefore", "growingAfter"}
)
"""Values that legitimately differ between two writes (Q5)."""
DATE_KEYS = frozenset({"wonPromptLotteryDate"})
TREE_FIELDS = (
    "messageTreeId",
    "goalTreeSize",
    "maxDepth",
    "maxChildrenCount",
    "state",
    "active",
    "origin",
    "wonPromptLotteryDate",
    "lang",
)


class Disagreement(Exception):
    """Two answers differ (or one cannot be mapped onto the other's shape)."""


def normalise(value: Any) -> Any:
    """The answer with the values that legitimately differ between two writes blanked."""
    if isinstance(value, dict):
        return {k: "<volatile>" if k in VOLATILE_KEYS else normalise(v) for k, v in value.items()}
    if isinstance(value, list):
        return [normalise(v) for v in value]
    return value


def instants(value: Any) -> Any:
    """The answer with its dates written one way (UTC, microseconds), whatever each server's
    formatting: `2023-09-13T00:12:09+00:00` and `2023-09-13T00:12:09.000000+00:00` agree."""
    if isinstance(value, dict):
        return {
            k: _instant(v) if k in DATE_KEYS and isinstance(v, str) else instants(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [instants(v) for v in value]
    return value


def _instant(text: str) -> str:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise Disagreement(f"not an ISO 8601 date: {text!r}") from exc
    if parsed.tzinfo is None:
        raise Disagreement(f"a date without its time zone: {text!r}")
    return parsed.astimezone(UTC).isoformat(timespec="microseconds")


def first_difference(a: Any, b: Any, path: str = "$") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        if list(a) != list(b):
            return f"{path}: keys {list(a)} != {list(b)}"
        for key in a:
            if a[key] != b[key]:
                return first_difference(a[key], b[key], f"{path}.{key}")
    elif isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return first_difference(x, y, f"{path}[{index}]")
    return f"{path}: {a!r} != {b!r}"


# --- PostGraphile's answers in Treegate's shape ------------------------------------------------


def _root_text(payload: Any) -> Any:
    """`payload -> 'payload' ->> 'text'`, as Treegate's Message.text reads the column."""
    inner = payload.get("payload") if isinstance(payload, dict) else None
    text = inner.get("text") if isinstance(inner, dict) else None
    if text is None or isinstance(text, str):
        return text
    return json.dumps(text, separators=(", ", ": "))  # ->> gives a JSON value's text


def _tree(node: Any, with_root: bool) -> dict[str, Any]:
    if not isinstance(node, dict):
        raise Disagreement(f"a tree that is not an object: {node!r}")
    tree = {name: node[name] for name in TREE_FIELDS}
    # The column holds the value (`ready_for_export`); Treegate writes the GraphQL enum name.
    tree["state"] = str(node["state"]).upper()
    if with_root:
        root = node["messageByMessageTreeId"]
        tree["rootMessage"] = (
            None if root is None else {"text": _root_text(root["payload"]), "lang": root["lang"]}
        )
    return tree


def _sibling_key(row: dict[str, Any]) -> tuple[bool, int]:
    rank = row["rank"]
    return (rank is None, 0 if rank is None else rank)


def tree_messages(tree_id: str, rows: list[Any]) -> list[dict[str, Any]]:
    """PostGraphile's `allMessages` rows of one tree, in creation order, as Treegate's
    `messages { id parentId role text depth rank }`: deleted messages hidden with the ones
    below them, the root first, depth-first, siblings by rank (unranked last), then creation
    date and id (the order the rows came in)."""
    children: dict[Any, list[dict[str, Any]]] = {}
    root: dict[str, Any] | None = None
    for row in rows:
        if not isinstance(row, dict):
            raise Disagreement(f"a message that is not an object: {row!r}")
        if row["deleted"]:
            continue
        if row["rowId"] == tree_id:
            root = row
        else:
            children.setdefault(row["parentId"], []).append(row)
    found: list[dict[str, Any]] = []
    stack = [] if root is None else [root]
    while stack:
        row = stack.pop()
        found.append(
            {
                "id": row["rowId"],
                "parentId": row["parentId"],
                "role": row["role"],
                "text": _root_text(row["payload"]),
                "depth": row["depth"],
                "rank": row["rank"],
            }
        )
        below = sorted(children.get(row["rowId"], ()), key=_sibling_key)
        stack.extend(below[::-1])  # the first sibling on top
    return found


def as_treegate(query: str, data: Any) -> Any:
    """PostGraphile's `data` for `query` (Q1, Q2, Q4, Q6) in Treegate's shape and names."""
    try:
        if query in ("Q1", "Q4"):
            connection = data["allMessageTreeStates"]
            return {
                "messageTreeStates": {
                    "nodes": [_tree(n, query == "Q4") for n in connection["nodes"]],
                    "totalCount": connection["totalCount"],
                }
            }
        if query == "Q2":
            node = data["messageTreeStateByMessageTreeId"]
            return {"messageTreeState": None if node is None else _tree(node, False)}
        if query == "Q6":
            node = data["messageTreeStateByMessageTreeId"]
            if node is None:
                return {"messageTreeState": None}
            rows = data["allMessages"]["nodes"]
            return {"messageTreeState": {"messages": tree_messages(node["messageTreeId"], rows)}}
    except (KeyError, TypeError) as exc:
        raise Disagreement(f"PostGraphile's answer lacks {exc} ({str(data)[:300]})") from exc
    raise ValueError(f"PostGraphile has no equivalent of {query}")


def check_postgraphile(query: str, treegate: Any, postgraphile: Any) -> None:
    """Raise Disagreement unless PostGraphile's parsed answer is Treegate's, mapped."""
    expected = instants(treegate["data"])
    got = instants(as_treegate(query, postgraphile["data"]))
    if expected != got:
        raise Disagreement(
            f"PostGraphile's answer differs from Treegate's at {first_difference(expected, got)}"
        )
