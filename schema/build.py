"""The Schema object and its SDL."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import strawberry
from graphql import (
    ASTValidationRule,
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    MaxIntrospectionDepthRule,
    NoSchemaIntrospectionCustomRule,
    ValueNode,
    ValuesOfCorrectTypeRule,
    recommended_rules,
    specified_rules,
    validate,
)
from strawberry.extensions import ParserCache, ValidationCache
from strawberry.schema.config import StrawberryConfig
from strawberry.types import ExecutionResult
from strawberry.types.execution import ExecutionContext

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


def graphql_core_schema(schema: strawberry.Schema) -> GraphQLSchema:
    """The graphql-core schema Strawberry built, which validation and the compiled lane read.

    Strawberry keeps it in an attribute without a public name, `_schema` (its own documentation
    reads it the same way); this is the one place Treegate does. `tests/test_dependencies.py`
    fails, naming it, if a Strawberry release moves it.
    """
    core = schema._schema
    if not isinstance(core, GraphQLSchema):
        raise TypeError(
            f"strawberry.Schema._schema is a {type(core).__name__}, not a GraphQLSchema"
        )
    return core


class IntrospectionDepthRule(MaxIntrospectionDepthRule):
    """graphql-core's limit on nested introspection, its errors coded INTROSPECTION_DEPTH_EXCEEDED
    where they are raised (rather than recognised by their message afterwards)."""

    def report_error(self, error: GraphQLError) -> None:
        error.extensions = {**(error.extensions or {}), "code": INTROSPECTION_DEPTH}
        super().report_error(error)


class LocatedValuesRule(ValuesOfCorrectTypeRule):
    """graphql-core's check of literal values, with every error located at its value.

    A scalar that refuses a literal with its own `GraphQLError` (Strawberry's UUID and DateTime
    do) gives an error without a location; this rule remembers which value it is checking
    (graphql-core visits each through `enter_<kind>_value`) and places such errors there.
    """

    _value: ValueNode | None = None

    def report_error(self, error: GraphQLError) -> None:
        if not error.nodes and self._value is not None:
            error = GraphQLError(
                error.message,
                self._value,
                original_error=error.original_error,
                extensions=error.extensions,
            )
        super().report_error(error)


def _remembering(visit: Callable[..., Any]) -> Callable[..., Any]:
    def enter(self: LocatedValuesRule, node: ValueNode, *args: Any) -> Any:
        self._value = node
        return visit(self, node, *args)

    return enter


for _kind in ("null", "list", "object", "enum", "int", "float", "string", "boolean"):
    _name = f"enter_{_kind}_value"
    setattr(LocatedValuesRule, _name, _remembering(getattr(ValuesOfCorrectTypeRule, _name)))

_REPLACED: dict[type[ASTValidationRule], type[ASTValidationRule]] = {
    MaxIntrospectionDepthRule: IntrospectionDepthRule,
    ValuesOfCorrectTypeRule: LocatedValuesRule,
}

VALIDATION_RULES = tuple(
    dict.fromkeys(_REPLACED.get(rule, rule) for rule in (*specified_rules, *recommended_rules))
)
"""graphql-core's specified and recommended rules, each once (graphql-core 3.3 lists the
introspection depth limit in both): the introspection depth limit coded, literal values'
errors located."""


class TreegateSchema(strawberry.Schema):
    """Strawberry's schema, with the compiled read path in front of its execution."""

    fast_path_enabled: bool = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.graphql_schema = graphql_core_schema(self)
        self.fast_path = FastPath(self.graphql_schema, self.check_document)
        self._logged_fallbacks: set[tuple[str, str]] = set()
        self.configure(DocumentLimits(), introspection=True, hide_suggestions=False)

    def configure(
        self, limits: DocumentLimits, *, introspection: bool, hide_suggestions: bool
    ) -> None:
        """Set the document limits and the validation policy (production hides more)."""
        self.guard = DocumentGuard(self.graphql_schema, limits)
        self._rules = list(VALIDATION_RULES)
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
            self.graphql_schema,
            checked,
            self._rules,
            max_errors=20,
            hide_suggestions=self._hide_suggestions,
        )
        for error in errors:
            if "code" not in (error.extensions or {}):
                error.extensions = {**(error.extensions or {}), "code": GRAPHQL_VALIDATION_FAILED}
        return tuple(errors) or checked

    def check_document(self, source: str) -> DocumentNode | list[GraphQLError]:
        """The document if it is within the limits and valid, else the errors to answer with.

        Run before execution by the HTTP endpoint, and by the compiled path before it compiles a
        document; cached by source.
        """
        checked = self._validated(source)
        return list(checked) if isinstance(checked, tuple) else checked

    async def run(
        self,
        query: str,
        variables: dict[str, Any] | None,
        context: Context,
        operation_name: str | None,
    ) -> ExecutionResult:
        """Answer one request: by its compiled plan where the document has one, else by
        Strawberry's `execute` (which alone knows nothing of the compiled lane)."""
        if self.fast_path_enabled:
            found = self.fast_path.plan(query)
            if isinstance(found, Plan) and operation_name in (None, found.operation_name):
                try:
                    data = await self.fast_path.run(found, context, variables)
                except Exception as exc:
                    if fault_of(exc) is not None:
                        # The database failed, not the plan: asking again by the full path
                        # would only wait for the same failure.
                        return ExecutionResult(
                            data=None, errors=[GraphQLError(str(exc), original_error=exc)]
                        )
                    # Otherwise the full path answers, errors included.
                    reason = exc.reason if isinstance(exc, Unsupported) else "error"
                    self._fell_back(context, query, reason, str(exc) or type(exc).__name__)
                else:
                    return ExecutionResult(data=data, errors=None)
            elif isinstance(found, Fallback):
                self._fell_back(context, query, found.reason, found.detail)
        return await self.execute(
            query,
            variable_values=variables,
            context_value=context,
            operation_name=operation_name,
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
