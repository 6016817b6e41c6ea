"""Plans: what a compiled selection fetches and how it writes each value."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from operator import attrgetter
from typing import TYPE_CHECKING, Any

from graphql.execution.values import VariableValues

from resolvers.context import Context

if TYPE_CHECKING:
    from schema.fast.variables import Variables


class Unsupported(Exception):
    """The document (or this execution of it) needs the full execution path.

    `reason` is what the metrics count it by (a short, fixed word); the message says more.
    """

    def __init__(self, detail: str, reason: str = "unsupported_document") -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Fallback:
    """A query document the compiler cannot plan: the full path answers it, every time."""

    reason: str
    detail: str


Writer = Callable[[Any], Any]
"""Turns one domain value into its response value (a scalar, list or dict)."""


uuid_value: Writer = str
"""UUIDs as their text (asyncpg's own UUID type too, which the encoder does not know)."""

enum_value: Writer = attrgetter("name")
"""Enum members as their GraphQL names."""


def plain(value: Any) -> Any:
    """Written as it is: the encoder writes scalars, and datetimes as `isoformat()` does."""
    return value


Aux = dict[str, Any]
"""Data prefetched for a whole list in one statement (e.g. root messages by tree id)."""


@dataclass(frozen=True, slots=True)
class Field:
    """One selected field: its response key, and how to get and write its value.

    `attribute` names a plain attribute of the source, which a compiled writer reads inline;
    other fields are read through `get`. Writers never see None: a null is written as null, or
    sends a non-null field to the full path.
    """

    key: str
    get: Callable[[Any, Aux], Any] | None
    write: Writer
    nullable: bool = True
    attribute: str | None = None


ObjectWriter = Callable[[Any, Aux], dict[str, Any]]


class Columns:
    """Attributes read by position: each gets a fixed index on first sight, in order."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def index(self, name: str) -> int:
        if name not in self.names:
            self.names.append(name)
        return self.names.index(name)


def object_writer(fields: tuple[Field, ...], columns: Columns | None = None) -> ObjectWriter:
    """A function that writes `fields` of one source object, generated once per selection.

    Looping over `Field`s costs a handful of calls per value; a page of 100 trees has about a
    thousand. The generated function reads each attribute inline and builds the dict in one
    expression (graphql-jit's idea, in Python). Its text holds only attribute names from the
    compiler's own tables and response keys, which the GraphQL parser admits only as names
    (`[_A-Za-z][_0-9A-Za-z]*`) and which are written as string literals (`repr`) anyway.

    With `columns`, the source is a row holding just the columns the plan selected, in the
    order `columns` gives them, and attributes are read by position.
    """
    namespace: dict[str, Any] = {"Unsupported": Unsupported}
    lines = ["def write(s, aux):"]
    entries: list[str] = []
    for i, field in enumerate(fields):
        value = f"v{i}"
        if field.attribute is not None:
            if not field.attribute.isidentifier():
                raise ValueError(f"not an attribute name: {field.attribute!r}")
            if columns is None:
                lines.append(f"    {value} = s.{field.attribute}")
            else:  # a row of exactly the selected columns
                lines.append(f"    {value} = s[{columns.index(field.attribute)}]")
        else:
            assert field.get is not None, field.key
            namespace[f"get{i}"] = field.get
            lines.append(f"    {value} = get{i}(s, aux)")
        if not field.nullable:
            lines.append(f"    if {value} is None:")
            lines.append("        raise Unsupported('null in a non-null field', 'null_value')")
        if field.write is plain:
            expression = value
        else:
            namespace[f"write{i}"] = field.write
            expression = f"write{i}({value})"
            if field.nullable:
                expression = f"(None if {value} is None else {expression})"
        entries.append(f"{field.key!r}: {expression}")
    lines.append("    return {" + ", ".join(entries) + "}")
    exec(compile("\n".join(lines), "<treegate compiled selection>", "exec"), namespace)
    writer: ObjectWriter = namespace["write"]
    return writer


RootRun = Callable[[Context, VariableValues], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RootField:
    key: str
    run: RootRun


@dataclass(frozen=True, slots=True)
class Plan:
    """A compiled query operation: its root fields, run one after another."""

    operation_name: str | None
    variables: Variables
    roots: tuple[RootField, ...]
