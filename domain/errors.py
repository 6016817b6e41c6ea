"""Errors that carry data, raised by the use cases and mapped to GraphQL by the schema."""

from __future__ import annotations


class TreegateError(Exception):
    """Base of every expected Treegate error."""


class InvalidInput(TreegateError):
    """An argument the client sent is out of range or malformed (BAD_USER_INPUT)."""

    def __init__(self, argument: str, message: str) -> None:
        super().__init__(message)
        self.argument = argument
        self.message = message


class UnknownStateValue(TreegateError):
    """The database holds a state value that is not a known State (no CHECK constraint there)."""

    def __init__(self, value: str) -> None:
        super().__init__(f"unknown message tree state {value!r} in the database")
        self.value = value


class Unauthenticated(TreegateError):
    """No valid API key, and the anonymous role does not allow this (UNAUTHENTICATED)."""


class Forbidden(TreegateError):
    """The caller's role is below what the operation needs (FORBIDDEN)."""


def check_text(argument: str, value: str | None) -> None:
    """Text a client sends for storage or comparison: no NUL (U+0000), which PostgreSQL's text
    cannot hold (and a comparison with one would fail there, not in the client's input)."""
    if value is not None and "\x00" in value:
        raise InvalidInput(argument, f"`{argument}` must not contain NUL characters (U+0000)")


class TreeTooLarge(TreegateError):
    """A tree has more messages than a request may read at once (TREE_TOO_LARGE): answered
    as an error, never as a partial list presented as the whole tree."""

    def __init__(self, tree_id: object, most: int) -> None:
        super().__init__(
            f"message tree {tree_id} has more than {most} messages, the most a request reads "
            "(TREEGATE_MAX_TREE_MESSAGES); page through it with `messages(filter: "
            "{messageTreeId: ...})` instead"
        )
        self.most = most
