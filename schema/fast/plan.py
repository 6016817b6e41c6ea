"""Plans: what a compiled selection fetches and how it writes each value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any
from uuid import UUID

from graphql.execution.values import VariableValues

from resolvers.context import Context


class Unsupported(Exception):
    """The document (or this execution of it) needs the full execution path."""


Writer = Callable[[Any], Any]
"""Turns one domain value into its response value (a scalar, list or dict)."""


def uuid_value(value: UUID | None) -> str | None:
    return None if value is None else str(value)


def date_value(value: datetime | None) -> datetime | None:
    # Left to the encoder: orjson writes a datetime as `isoformat()` does (the DateTime scalar's
    # serialization), in C.
    return value


def enum_value(value: Enum | None) -> str | None:
    return None if value is None else value.name


def plain(value: Any) -> Any:
    return value


Aux = dict[str, Any]
"""Data prefetched for a whole list in one statement (e.g. root messages by tree id)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One selected field: its response key, and how to get and write its value."""

    key: str
    get: Callable[[Any, Aux], Any]
    write: Writer
    nullable: bool = True

    def value(self, source: Any, aux: Aux) -> Any:
        result = self.get(source, aux)
        if result is None:
            if not self.nullable:
                raise Unsupported("null in a non-null field: let the full path report it")
            return None
        return self.write(result)


def write_object(fields: tuple[Field, ...], source: Any, aux: Aux) -> dict[str, Any]:
    return {f.key: f.value(source, aux) for f in fields}


RootRun = Callable[[Context, VariableValues], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    run: RootRun


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled query operation: its root fields, run one after another."""

    operation_name: str | None
    variable_definitions: Any
    roots: tuple[RootField, ...]
