"""Running plans, with a bounded cache of compiled documents."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from graphql import DocumentNode, GraphQLError, GraphQLSchema
from graphql.execution.values import VariableValues, get_variable_values

from resolvers.context import Context
from schema.fast.compile import compile_document
from schema.fast.plan import Plan, Unsupported

Check = Callable[[str], DocumentNode | list[GraphQLError]]
"""The schema's own document check, limits and validation, cached (`check_document`)."""


class FastPath:
    """Compiles each document once (valid or not: a miss is remembered too) and runs plans."""

    def __init__(self, schema: GraphQLSchema, check: Check, maxsize: int = 512) -> None:
        self._schema = schema
        self._check = check
        self._plans: OrderedDict[str, Plan | None] = OrderedDict()
        self._maxsize = maxsize

    def plan(self, source: str) -> Plan | None:
        if source in self._plans:
            self._plans.move_to_end(source)
            return self._plans[source]
        document = self._check(source)
        plan = (
            compile_document(self._schema, document) if isinstance(document, DocumentNode) else None
        )
        self._plans[source] = plan
        if len(self._plans) > self._maxsize:
            self._plans.popitem(last=False)
        return plan

    async def run(
        self, plan: Plan, context: Context, variables: dict[str, Any] | None
    ) -> dict[str, Any]:
        """The response data; raises (Unsupported or anything) when the full path must answer."""
        coerced = get_variable_values(
            self._schema, plan.variable_definitions or (), variables or {}
        )
        if not isinstance(coerced, VariableValues):
            raise Unsupported("variables do not coerce")
        data: dict[str, Any] = {}
        for root in plan.roots:
            data[root.key] = await root.run(context, coerced)
        return data
