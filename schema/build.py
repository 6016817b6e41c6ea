"""The Schema object and its SDL."""

from __future__ import annotations

import strawberry
from graphql import GraphQLError
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types.execution import ExecutionContext

from schema.errors import ErrorCodes
from schema.mutation import Mutation
from schema.query import Query


class TreegateSchema(strawberry.Schema):
    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Expected errors are the client's business, not the log's; `schema.errors.classify`
        # logs the unexpected ones, with the request id.
        return


def build_schema() -> TreegateSchema:
    return TreegateSchema(
        query=Query,
        mutation=Mutation,
        config=StrawberryConfig(auto_camel_case=True),
        extensions=[
            ErrorCodes,
            # Factories: the LRU caches themselves are module-level and shared by requests.
            lambda: ParserCache(maxsize=512),
            lambda: ValidationCache(maxsize=512),
        ],
    )


def sdl() -> str:
    """The schema in SDL, as committed in `schema/schema.graphql`."""
    return build_schema().as_str() + "\n"
