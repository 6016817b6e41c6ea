"""The compiled lane's field tables come from the schema's types: a scalar field added to a
type is compiled with nothing else to edit, and written as the schema would write it."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from uuid import UUID

import strawberry
from graphql import GraphQLObjectType

from domain.values import TreeState
from schema.build import build_schema, graphql_core_schema
from schema.fast.fields import scalar_fields
from schema.fast.plan import enum_value, plain, uuid_value


@strawberry.enum
class Colour(Enum):
    RED = "red"


def _computed(root: strawberry.Parent[object]) -> int:
    return 1


@strawberry.type
class Thing:
    id: UUID
    name: str | None
    colour: Colour
    when: datetime
    weight: float
    tags: list[str]
    computed: int = strawberry.field(resolver=_computed)


@strawberry.type
class Query:
    thing: Thing | None = None


def test_a_new_scalar_field_is_in_the_table_by_construction() -> None:
    graphql_type = graphql_core_schema(strawberry.Schema(query=Query)).type_map["Thing"]
    assert isinstance(graphql_type, GraphQLObjectType)
    table = scalar_fields(graphql_type)
    assert table == {
        "id": ("id", uuid_value, False),
        "name": ("name", plain, True),
        "colour": ("colour", enum_value, False),
        "when": ("when", plain, False),
        "weight": ("weight", float, False),
    }  # `tags` (a list) and `computed` (a resolver) are the compiler's own business


def test_every_column_of_a_tree_is_a_compiled_field() -> None:
    graphql_type = build_schema()._schema.type_map["MessageTreeState"]
    assert isinstance(graphql_type, GraphQLObjectType)
    attributes = {attribute for attribute, _w, _n in scalar_fields(graphql_type).values()}
    assert attributes == set(TreeState._fields)
