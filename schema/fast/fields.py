"""The compiled lane's field tables, derived from the schema's own types.

A field of an object type that Strawberry resolves by reading an attribute (no resolver of its
own) and whose type is a scalar or an enum is a *scalar field*: the compiled lane reads the
same attribute of the same domain value and writes it as the schema would. So adding such a
field to a type (`schema/types.py`) makes it compiled, with nothing else to edit; a field with
a resolver is compiled only where `schema.fast.compile` knows it, and otherwise the document
falls back to the full path (counted in `/metrics`).
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from graphql import (
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLFloat,
    GraphQLInt,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLString,
    is_list_type,
    is_non_null_type,
)

from schema.fast.plan import Writer, enum_value, plain, uuid_value

STRAWBERRY_FIELD = "strawberry-definition"
"""Where Strawberry keeps its field definition in a graphql-core field's `extensions`."""

ScalarTable = dict[str, tuple[str, Writer, bool]]
"""GraphQL field name: (attribute of the source value, writer, nullable)."""

_PLAIN = frozenset({GraphQLString.name, GraphQLInt.name, GraphQLBoolean.name, "DateTime"})
"""Scalars the response encoder writes exactly as their `serialize` would: the value itself
(orjson writes datetimes as `isoformat()` does, as Strawberry's DateTime serializes them)."""


def _writer(named: GraphQLScalarType | GraphQLEnumType) -> Writer:
    if isinstance(named, GraphQLEnumType):
        # Strawberry's enums are the domain's (schema/enums.py): GraphQL names are member names.
        return enum_value
    if named.name == "UUID":
        return uuid_value
    if named.name in _PLAIN:
        return plain
    if named.name == GraphQLFloat.name:
        return float
    serialize: Writer = named.serialize
    return serialize


@lru_cache(maxsize=64)
def scalar_fields(graphql_type: GraphQLObjectType) -> ScalarTable:
    """The scalar fields of `graphql_type` (see the module's docstring)."""
    table: ScalarTable = {}
    for name, field in graphql_type.fields.items():
        definition: Any = (field.extensions or {}).get(STRAWBERRY_FIELD)
        if definition is None or definition.base_resolver is not None:
            continue
        nullable = not is_non_null_type(field.type)
        of_type = field.type.of_type if is_non_null_type(field.type) else field.type
        if is_list_type(of_type) or not isinstance(of_type, GraphQLScalarType | GraphQLEnumType):
            continue
        table[name] = (definition.python_name, _writer(of_type), nullable)
    return table
