"""Limits on documents, checked before anything runs, each failure coded after its limit.

A document is parsed with a cap on its tokens (the parser stops at the cap, so a token bomb
costs no more than a small document), then walked once by the checks below, which run before
graphql-core's own validation: some of its rules (overlapping fields) are quadratic in the
number of fields, and a document of a thousand aliases must not reach them.

Cost: every field costs 1, plus the cost of its selection times its multiplier. A field with a
`first` argument (a page) multiplies by `first`: the literal value, the maximum page size when
it comes from a variable (not known until the request runs), or the argument's default when
absent. A list of messages without `first` multiplies by its size (`list_sizes`): a tree's
whole list (`messages`, `descendants`) by the most messages a request reads of one tree, the
others by the size Open-Assistant's trees keep them under (`ASSUMED_LIST_SIZES`). Other fields
multiply by 1 (a connection's `nodes` and `edges` are the page's rows, already counted by
`first`). Fragments are expanded where they are spread.

Introspection (`__schema`, `__type`) is left to its own rules, as graphql-armor does by default:
graphql-core's `MaxIntrospectionDepthRule` bounds its nesting (the circular-introspection attack),
production turns it off, and the standard introspection query of tools (GraphiQL, codegen,
schemathesis) is deeper than the depth limit.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    InlineFragmentNode,
    IntValueNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    get_named_type,
    parse,
    visit,
)
from graphql.language import Visitor
from graphql.type import GraphQLInterfaceType, GraphQLObjectType

from resolvers.loaders import DEFAULT_MAX_TREE_MESSAGES
from schema.errors import GRAPHQL_PARSE_FAILED

TOKEN_LIMIT = "TOKEN_LIMIT_EXCEEDED"
DEPTH_LIMIT = "DEPTH_LIMIT_EXCEEDED"
ALIAS_LIMIT = "ALIAS_LIMIT_EXCEEDED"
DIRECTIVE_LIMIT = "DIRECTIVE_LIMIT_EXCEEDED"
COST_LIMIT = "COST_LIMIT_EXCEEDED"
INTROSPECTION_DEPTH = "INTROSPECTION_DEPTH_EXCEEDED"
"""graphql-core's MaxIntrospectionDepthRule, run with validation (`schema.build`)."""
DOCUMENT_LIMIT_CODES = frozenset(
    {TOKEN_LIMIT, DEPTH_LIMIT, ALIAS_LIMIT, DIRECTIVE_LIMIT, COST_LIMIT, INTROSPECTION_DEPTH}
)


def is_token_limit(error: GraphQLError) -> bool:
    """Whether `parse(..., max_tokens=n)` refused the document for its length.

    graphql-core raises the same `GraphQLSyntaxError` for this as for a syntax error; only its
    message ("Document contains more than n tokens. Parsing aborted.") tells them apart. This is
    the one place Treegate reads it; `tests/test_dependencies.py` fails, naming it, if a
    graphql-core release words it otherwise.
    """
    return "more than" in error.message and "tokens" in error.message


ASSUMED_LIST_SIZES = {
    "Message.children": 10,
    "Message.conversation": 16,
    "MessageTreeState.longestConversation": 16,
    "Message.emojis": 8,
}
"""Lists a tree's shape keeps short: Open-Assistant grows trees to `max_children_count`
replies per message and `max_depth` levels (3 and 3 by default, at most a handful in its
configurations), and gives a handful of emoji kinds."""
TREE_WIDE_LISTS = ("MessageTreeState.messages", "Message.descendants")
"""Lists as long as a whole tree: bounded by the most messages a request reads of one tree."""


def list_sizes(max_tree_messages: int) -> tuple[tuple[str, int], ...]:
    """The multiplier of each list field without `first`, as `Type.field`."""
    return (
        *((name, max_tree_messages) for name in TREE_WIDE_LISTS),
        *ASSUMED_LIST_SIZES.items(),
    )


@dataclass(frozen=True, slots=True)
class DocumentLimits:
    max_tokens: int = 2_000
    max_depth: int = 10
    max_aliases: int = 15
    max_directives: int = 10
    max_cost: int = 50_000
    max_page_size: int = 100
    """The `first` a cost estimate assumes when `first` comes from a variable."""
    list_sizes: tuple[tuple[str, int], ...] = list_sizes(DEFAULT_MAX_TREE_MESSAGES)
    """The multiplier of each list field without `first` (`Type.field`, size)."""


class LimitExceeded(Exception):
    """A document over a limit: its GraphQL error carries the limit's code."""

    def __init__(self, error: GraphQLError) -> None:
        super().__init__(error.message)
        self.error = error


def _error(message: str, code: str, limit: int, nodes: Node | None = None) -> GraphQLError:
    return GraphQLError(message, nodes, extensions={"code": code, "limit": limit})


class DocumentGuard:
    """Parses documents within the limits and checks them; results cached by source text."""

    def __init__(self, schema: GraphQLSchema, limits: DocumentLimits, cache_size: int = 512):
        self.schema = schema
        self.limits = limits
        self.check = lru_cache(maxsize=cache_size)(self._check)

    def _check(self, source: str) -> DocumentNode | GraphQLError:
        """The parsed document if it is within every limit, else the error to answer with."""
        try:
            document = parse(Source(source), max_tokens=self.limits.max_tokens, no_location=False)
        except GraphQLError as error:
            if is_token_limit(error):
                return _error(
                    f"The document has more than {self.limits.max_tokens} tokens.",
                    TOKEN_LIMIT,
                    self.limits.max_tokens,
                )
            return GraphQLError(
                error.message,
                source=error.source,
                positions=error.positions,
                extensions={"code": GRAPHQL_PARSE_FAILED},
            )
        try:
            self._within_limits(document)
        except LimitExceeded as exceeded:
            return exceeded.error
        return document

    def _within_limits(self, document: DocumentNode) -> None:
        limits = self.limits
        counter = _Counter()
        visit(document, counter)
        if counter.aliases > limits.max_aliases:
            raise LimitExceeded(
                _error(
                    f"The document has {counter.aliases} aliases; at most {limits.max_aliases}"
                    " are allowed.",
                    ALIAS_LIMIT,
                    limits.max_aliases,
                )
            )
        if counter.directives > limits.max_directives:
            raise LimitExceeded(
                _error(
                    f"The document has {counter.directives} directives; at most "
                    f"{limits.max_directives} are allowed.",
                    DIRECTIVE_LIMIT,
                    limits.max_directives,
                )
            )
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        for operation in document.definitions:
            if not isinstance(operation, OperationDefinitionNode):
                continue
            walker = _Walker(self.schema, fragments, limits)
            root = self.schema.get_root_type(operation.operation)
            cost = walker.cost(operation.selection_set, root, 1)
            if walker.deepest > limits.max_depth:
                raise LimitExceeded(
                    _error(
                        f"The operation is {walker.deepest} levels deep; at most "
                        f"{limits.max_depth} are allowed.",
                        DEPTH_LIMIT,
                        limits.max_depth,
                        operation,
                    )
                )
            if cost > limits.max_cost:
                raise LimitExceeded(
                    _error(
                        f"The operation's estimated cost is {cost}; at most {limits.max_cost} "
                        "is allowed (a page's `first` multiplies the cost of its selection).",
                        COST_LIMIT,
                        limits.max_cost,
                        operation,
                    )
                )


class _Counter(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.aliases = 0
        self.directives = 0

    def enter_field(self, node: FieldNode, *_args: object) -> None:
        if node.alias is not None:
            self.aliases += 1

    def enter_directive(self, _node: DirectiveNode, *_args: object) -> None:
        self.directives += 1


_INTROSPECTION = frozenset({"__schema", "__type"})


class _Walker:
    """Depth and cost of a selection set, with fragments expanded (each at most once per path)."""

    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        limits: DocumentLimits,
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.limits = limits
        self.deepest = 0
        self._spreading: set[str] = set()
        self._list_sizes = dict(limits.list_sizes)

    def _fields(
        self, selection_set: SelectionSetNode, parent: object
    ) -> Iterator[tuple[FieldNode, object]]:
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                yield selection, parent
            elif isinstance(selection, InlineFragmentNode):
                typed = (
                    self.schema.get_type(selection.type_condition.name.value)
                    if selection.type_condition
                    else parent
                )
                yield from self._fields(selection.selection_set, typed)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = self.fragments.get(name)
                if fragment is None or name in self._spreading:
                    continue  # unknown or cyclic: validation reports it
                self._spreading.add(name)
                try:
                    typed = self.schema.get_type(fragment.type_condition.name.value)
                    yield from self._fields(fragment.selection_set, typed)
                finally:
                    self._spreading.discard(name)

    def cost(self, selection_set: SelectionSetNode | None, parent: object, depth: int) -> int:
        if selection_set is None:
            return 0
        self.deepest = max(self.deepest, depth)
        if depth > self.limits.max_depth:
            return 0  # too deep already: reported as such, no need to go further
        total = 0
        for node, parent_type in self._fields(selection_set, parent):
            if node.name.value in _INTROSPECTION:
                # Bounded by the schema's size, and its nesting by graphql-core's
                # MaxIntrospectionDepthRule: tools' standard introspection query is 11 deep.
                total += 1
                continue
            field_type = None
            argument_default = None
            size = None
            if isinstance(parent_type, GraphQLObjectType | GraphQLInterfaceType):
                definition = parent_type.fields.get(node.name.value)
                if definition is not None:
                    field_type = get_named_type(definition.type)
                    first = definition.args.get("first")
                    argument_default = first.default_value if first is not None else None
                    size = self._list_sizes.get(f"{parent_type.name}.{node.name.value}")
            multiplier = size or self._multiplier(node, argument_default)
            total += 1 + multiplier * self.cost(node.selection_set, field_type, depth + 1)
            if total > self.limits.max_cost:
                return total  # over already: stop counting
        return total

    def _multiplier(self, node: FieldNode, default: object) -> int:
        for argument in node.arguments or ():
            if argument.name.value == "first":
                if isinstance(argument.value, IntValueNode):
                    # Beyond the page size the field refuses `first` itself, with the more
                    # specific message: counted as the largest page, it is not a cost problem.
                    return min(max(int(argument.value.value), 1), self.limits.max_page_size)
                return self.limits.max_page_size  # a variable: assume the worst
        if isinstance(default, int):
            return max(default, 1)
        return 1
