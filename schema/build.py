"""The Schema object and its SDL."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    NoSchemaIntrospectionCustomRule,
    recommended_rules,
    specified_rules,
    validate,
)
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult
from strawberry.types.execution import ExecutionContext
from strawberry.types.graphql import OperationType

from db.faults import fault_of
from resolvers.context import Context
from schema.errors import GRAPHQL_VALIDATION_FAILED, ErrorCodes
from schema.fast.plan import Fallback, Plan, Unsupported
from schema.fast.run import FastPath
from schema.limits import INTROSPECTION_DEPTH, DocumentGuard, DocumentLimits
from schema.mutation import Mutation
from schema.query import Query

logger = logging.getLogger("treegate.schema")

MAX_LOGGED_FALLBACKS = 1024
"""Documents whose fallback was logged; past this many the memory starts over."""


class TreegateSchema(strawberry.Schema):
    """Strawberry's schema, with the compiled read path in front of its execution."""

    fast_path_enabled: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fast_path = FastPath(self._schema, self.check_document)
        self._logged_fallbacks: set[tuple[str, str]] = set()
        self.configure(DocumentLimits(), introspection=True, hide_suggestions=False)

    def configure(
        self, limits: DocumentLimits, *, introspection: bool, hide_suggestions: bool
    ) -> None:
        """Set the document limits and the validation policy (production hides more)."""
        self.guard = DocumentGuard(self._schema, limits)
        self._rules = [*specified_rules, *recommended_rules]
        if not introspection:
            self._rules.append(NoSchemaIntrospectionCustomRule)
        self._hide_suggestions = hide_suggestions
        self.introspection = introspection
        self._validated = lru_cache(maxsize=512)(self._validate)

    def _validate(self, source: str) -> DocumentNode | tuple[GraphQLError, ...]:
        checked = self.guard.check(source)
        if isinstance(checked, GraphQLError):
            return (checked,)
        errors = validate(
            self._schema,
            checked,
            self._rules,
            max_errors=20,
            hide_suggestions=self._hide_suggestions,
        )
        for error in errors:
            code = (
                INTROSPECTION_DEPTH
                if error.message.startswith("Maximum introspection depth exceeded")
                else GRAPHQL_VALIDATION_FAILED
            )
            error.extensions = {**(error.extensions or {}), "code": code}
        return tuple(errors) or checked

    def check_document(self, source: str) -> DocumentNode | list[GraphQLError]:
        """The document if it is within the limits and valid, else the errors to answer with.

        Run before execution by the HTTP endpoint, and by the compiled path before it compiles a
        document; cached by source.
        """
        checked = self._validated(source)
        return list(checked) if isinstance(checked, tuple) else checked

    async def execute(
        self,
        query: str | None,
        variable_values: dict[str, Any] | None = None,
        context_value: Any | None = None,
        root_value: Any | None = None,
        operation_name: str | None = None,
        allowed_operation_types: Iterable[OperationType] | None = None,
        operation_extensions: dict[str, Any] | None = None,
    ) -> ExecutionResult:
        if self.fast_path_enabled and query is not None and isinstance(context_value, Context):
            found = self.fast_path.plan(query)
            if isinstance(found, Plan) and operation_name in (None, found.operation_name):
                try:
                    data = await self.fast_path.run(found, context_value, variable_values)
                except Exception as exc:
                    if fault_of(exc) is not None:
                        # The database failed, not the plan: asking again by the full path
                        # would only wait for the same failure.
                        return ExecutionResult(
                            data=None, errors=[GraphQLError(str(exc), original_error=exc)]
                        )
                    # Otherwise the full path answers, errors included.
                    reason = exc.reason if isinstance(exc, Unsupported) else "error"
                    self._fell_back(context_value, query, reason, str(exc) or type(exc).__name__)
                else:
                    return ExecutionResult(data=data, errors=None)
            elif isinstance(found, Fallback):
                self._fell_back(context_value, query, found.reason, found.detail)
        return await super().execute(
            query,
            variable_values=variable_values,
            context_value=context_value,
            root_value=root_value,
            operation_name=operation_name,
            allowed_operation_types=allowed_operation_types,
            operation_extensions=operation_extensions,
        )

    def _fell_back(self, context: Context, query: str, reason: str, detail: str) -> None:
        """Count a query answered by the full path instead of its compiled plan, and log it
        once per document and reason (while this process remembers it)."""
        context.caches.metrics.fallback(reason)
        key = (query, reason)
        if key in self._logged_fallbacks:
            return
        if len(self._logged_fallbacks) >= MAX_LOGGED_FALLBACKS:
            self._logged_fallbacks.clear()
        self._logged_fallbacks.add(key)
        operation = self.fast_path.operation_name(query)
        logger.info(
            "compiled reads: %s answered by the full execution path (%s: %s)",
            f"operation {operation}" if operation else "an anonymous query",
            reason,
            detail,
        )

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
