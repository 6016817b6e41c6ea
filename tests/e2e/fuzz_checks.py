"""Schemathesis checks for Treegate, loaded by the fuzzing test (`SCHEMATHESIS_HOOKS`).

Beyond "no 5xx": a GraphQL answer must never carry an unexpected error where a typed result or
a coded client error belongs. Every error has an `extensions.code`, and none is
`INTERNAL_SERVER_ERROR`.
"""

from __future__ import annotations

from typing import Any

import schemathesis


@schemathesis.check
def no_unexpected_graphql_error(ctx: Any, response: Any, case: Any) -> None:
    try:
        body = response.json()
    except ValueError as exc:
        raise AssertionError(f"the answer is not JSON: {response.text[:200]!r}") from exc
    for item in body.get("errors") or []:
        code = (item.get("extensions") or {}).get("code")
        if code is None:
            raise AssertionError(f"an error without extensions.code: {item}")
        if code == "INTERNAL_SERVER_ERROR":
            raise AssertionError(f"an unexpected error: {item}")
