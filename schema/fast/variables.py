"""Variable coercion for compiled plans: the work graphql-core does per request, done once.

`graphql.execution.values.get_variable_values` resolves each variable's type from the document
and walks the value for its nesting depth on every request: for one UUID variable that was a
sixth of a compiled read's time. A `Variables` resolves the signatures once per document, and
walks values for depth only where the type can nest (lists, input objects). Each value is then
coerced by graphql-core's own `coerce_input_value`, so a value that coerces gets exactly what
the full path would give it. Anything else (a missing non-null variable, a value that does not
coerce, a bad default) raises `Unsupported`: the full path answers with its own errors.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    VariableDefinitionNode,
    get_named_type,
    is_input_object_type,
    is_list_type,
    is_non_null_type,
)
from graphql.execution.get_variable_signature import (
    GraphQLVariableSignature,
    get_variable_signature,
)
from graphql.execution.values import (
    VariableValues,
    VariableValueSource,
    input_is_nested_too_deeply,
    maybe_use_default_value,
)
from graphql.pyutils import Undefined
from graphql.utilities.coerce_input_value import coerce_input_value

from schema.fast.plan import Unsupported


@dataclass(frozen=True, slots=True)
class _Variable:
    name: str
    signature: GraphQLVariableSignature
    has_default: bool
    non_null: bool
    can_nest: bool


def _can_nest(type_: Any) -> bool:
    while is_non_null_type(type_):
        type_ = type_.of_type
    return is_list_type(type_) or is_input_object_type(get_named_type(type_))


class Variables:
    """The variable definitions of one operation, resolved against the schema once."""

    def __init__(
        self, schema: GraphQLSchema, definitions: Collection[VariableDefinitionNode]
    ) -> None:
        variables: list[_Variable] = []
        for definition in definitions:
            signature = get_variable_signature(schema, definition)
            if isinstance(signature, GraphQLError):
                raise Unsupported("a variable of an unknown type", "variables")
            variables.append(
                _Variable(
                    signature.name,
                    signature,
                    definition.default_value is not None,
                    is_non_null_type(signature.type),
                    _can_nest(signature.type),
                )
            )
        self._variables = tuple(variables)

    def coerce(self, inputs: dict[str, Any]) -> VariableValues:
        sources: dict[str, VariableValueSource] = {}
        coerced: dict[str, Any] = {}
        for variable in self._variables:
            name = variable.name
            value = inputs.get(name, Undefined)
            if value is Undefined:
                sources[name] = VariableValueSource(variable.signature)
                if variable.has_default:
                    maybe_use_default_value(coerced, name, variable.signature, _default_failed)
                    continue
                if variable.non_null:
                    raise Unsupported("a non-null variable is missing", "variables")
                continue
            sources[name] = VariableValueSource(variable.signature, value)
            if variable.can_nest and input_is_nested_too_deeply(value, variable.signature.type):
                raise Unsupported("variables nested too deeply", "variables")
            value = coerce_input_value(value, variable.signature.type)
            if value is Undefined:
                raise Unsupported("a variable does not coerce", "variables")
            coerced[name] = value
        return VariableValues(sources, coerced)


def _default_failed(_error: GraphQLError, _path: list[str | int]) -> None:
    raise Unsupported("a variable's default does not coerce", "variables")
