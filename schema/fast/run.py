"""Running plans, with a bounded cache of compiled documents."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema, OperationDefinitionNode

from resolvers.context import Context
from schema.fast.compile import compile_document
from schema.fast.plan import Fallback, Plan

Check = Callable[[str], DocumentNode | list[GraphQLError]]
"""The schema's own document check, limits and validation, cached (`check_document`)."""


class FastPath:
    """Compiles each document once and runs plans.

    `plan()` remembers, per document, its `Plan`, or the `Fallback` saying why a query cannot
    have one, or None for what is not the compiled lane's business (a mutation, an invalid
    document: the endpoint answers those by the full path without counting a fallback).
    """

    def __init__(self, schema: GraphQLSchema, check: Check, maxsize: int = 512) -> None:
        self._schema = schema
        self._check = check
        self._plans: OrderedDict[str, Plan | Fallback | None] = OrderedDict()
        self._maxsize = maxsize

    def plan(self, source: str) -> Plan | Fallback | None:
        plans = self._plans
        if source in plans:
            plans.move_to_end(source)
            return plans[source]
        document = self._check(source)
        found = (
            compile_document(self._schema, document) if isinstance(document, DocumentNode) else None
        )
        plans[source] = found
        if len(plans) > self._maxsize:
            plans.popitem(last=False)
        return found

    def operation_name(self, source: str) -> str | None:
        """The name of the document's operation, if it has exactly one named one."""
        document = self._check(source)
        if not isinstance(document, DocumentNode):
            return None
        names = [
            d.name.value
            for d in document.definitions
            if isinstance(d, OperationDefinitionNode) and d.name is not None
        ]
        return names[0] if len(names) == 1 else None

    async def run(
        self, plan: Plan, context: Context, variables: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The response data; raises (Unsupported or anything) when the full path must answer."""
        coerced = plan.variables.coerce(variables or {})
        data: dict[str, Any] = {}
        for root in plan.roots:
            data[root.key] = await root.run(context, coerced)
        return data
