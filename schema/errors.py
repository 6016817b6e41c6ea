"""Give every GraphQL error an `extensions.code`, and mask the unexpected ones.

Expected errors carry a code clients can switch on (`BAD_USER_INPUT`,
`GRAPHQL_VALIDATION_FAILED`, ...). Anything else is an unexpected failure: its message is
replaced by a generic one with the request id, and the full exception is logged under that
id, so no stack trace, SQL or path ever reaches a client.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from graphql import GraphQLError, get_operation_ast
from strawberry.extensions import SchemaExtension

from db.faults import RETRY_AFTER_S, fault_of
from domain.errors import Forbidden, InvalidInput, TreeTooLarge, Unauthenticated

logger = logging.getLogger("treegate.errors")

BAD_USER_INPUT = "BAD_USER_INPUT"
GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"
UNAUTHENTICATED = "UNAUTHENTICATED"
FORBIDDEN = "FORBIDDEN"
TREE_TOO_LARGE = "TREE_TOO_LARGE"
"""A tree has more messages than `TREEGATE_MAX_TREE_MESSAGES`: its tree-wide fields refuse."""
DATABASE_UNAVAILABLE = "DATABASE_UNAVAILABLE"
"""The database could not serve the request now (down, connection lost, no connection free in
time, a conflict that outlasted its retries): HTTP 503 with `Retry-After`."""


def _request_id(context: object) -> str:
    return str(getattr(context, "request_id", "-"))


def classify(
    error: GraphQLError, request_id: str, unplaced: str = GRAPHQL_VALIDATION_FAILED
) -> GraphQLError:
    """The error as the client should see it, with `extensions.code` set.

    `unplaced` is the code of an error of the GraphQL layer that has no path (raised before
    execution): the operation's variables (BAD_USER_INPUT) or the document and its operation
    (GRAPHQL_VALIDATION_FAILED). Which one is decided by what failed (`ErrorCodes`), never by
    the message's text: graphql-core's messages may change from one release to the next.
    """
    extensions = dict(error.extensions or {})
    if "code" in extensions:
        return error
    original = error.original_error
    if isinstance(original, InvalidInput):
        extensions.update(code=BAD_USER_INPUT, argument=original.argument)
        return _with(error, original.message, extensions)
    if isinstance(original, TreeTooLarge):
        return _with(
            error, str(original), {**extensions, "code": TREE_TOO_LARGE, "limit": original.most}
        )
    if isinstance(original, Unauthenticated | Forbidden):
        code = UNAUTHENTICATED if isinstance(original, Unauthenticated) else FORBIDDEN
        return _with(error, str(original), {**extensions, "code": code})
    fault = None if original is None else fault_of(original)
    if fault is not None:
        logger.warning(
            "database fault [request %s]: %s (%s)", request_id, fault.reason, _describe(original)
        )
        return _with(
            error,
            f"{fault.message}; retry in a moment",
            {
                "code": DATABASE_UNAVAILABLE,
                "reason": fault.reason,
                "retryAfter": RETRY_AFTER_S,
                "requestId": request_id,
            },
        )
    if original is None or isinstance(original, GraphQLError):
        extensions["code"] = unplaced if error.path is None else INTERNAL_SERVER_ERROR
        return _with(error, error.message, extensions)
    logger.error(
        "unexpected error [request %s] at %s",
        request_id,
        ".".join(str(p) for p in error.path or ()),
        exc_info=original,
    )
    return _with(
        error,
        f"Internal server error (request id {request_id})",
        {"code": INTERNAL_SERVER_ERROR, "requestId": request_id},
    )


def _describe(error: BaseException | None) -> str:
    """The exception's type and first line, for the log (never for the client)."""
    if error is None:
        return "-"
    first = str(error).partition("\n")[0][:200]
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def _with(error: GraphQLError, message: str, extensions: dict[str, object]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


class ErrorCodes(SchemaExtension):
    """Classifies the errors of an operation once it has finished."""

    def on_operation(self) -> Iterator[None]:
        yield
        execution = self.execution_context
        result = execution.result
        errors = getattr(result, "errors", None)
        if result is not None and errors:
            request_id = _request_id(execution.context)
            unplaced = GRAPHQL_VALIDATION_FAILED
            document = execution.graphql_document
            if (
                result.data is None
                and document is not None
                and get_operation_ast(document, execution.operation_name) is not None
            ):
                # The document is valid (checked before execution) and its operation was
                # found: what stopped it before executing were its variables.
                unplaced = BAD_USER_INPUT
            result.errors = [classify(e, request_id, unplaced) for e in errors]
