"""Compile a valid query document into a `Plan`, or say it needs the full path."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLField,
    GraphQLObjectType,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
)
from graphql.execution.values import VariableValues, get_argument_values

from domain import states, transitions
from domain.message_trees import MessageTree
from domain.values import Message, TreeFilter, TreeOrder, TreeState
from resolvers import trees
from resolvers.context import Context
from resolvers.trees import TreePage
from schema.fast.fields import scalar_fields
from schema.fast.plan import (
    Aux,
    Columns,
    Fallback,
    Field,
    Plan,
    RootField,
    Unsupported,
    object_writer,
    plain,
)
from schema.fast.variables import Variables
from schema.inputs import MessageTreeStateFilter

ROOT = "root_messages"
TREES = "message_trees"


def compile_document(schema: GraphQLSchema, document: DocumentNode) -> Plan | Fallback | None:
    """The plan for a valid `document`; a `Fallback` for a query it cannot plan (answered by
    the full execution path); None for a mutation or anything else that is not a query."""
    if not _is_query(document):
        return None
    try:
        return _compile(schema, document)
    except Unsupported as exc:
        return Fallback(exc.reason, str(exc))
    except Exception as exc:  # anything odd about the document: the full path handles it
        return Fallback("compile_error", f"{type(exc).__name__}: {exc}")


def _is_query(document: DocumentNode) -> bool:
    return any(
        isinstance(d, OperationDefinitionNode) and d.operation is OperationType.QUERY
        for d in document.definitions
    )


def _compile(schema: GraphQLSchema, document: DocumentNode) -> Plan:
    if len(document.definitions) != 1:
        raise Unsupported("several definitions", "several_operations")
    operation = document.definitions[0]
    if not isinstance(operation, OperationDefinitionNode):
        raise Unsupported("not an operation", "several_operations")
    if operation.operation is not OperationType.QUERY or operation.directives:
        raise Unsupported("a query with directives", "directives")
    query_type = schema.query_type
    assert query_type is not None
    roots = []
    for node in _fields(operation.selection_set):
        name = node.name.value
        if name == "__typename":
            roots.append(RootField(_key(node), _constant("Query")))
        elif name == "messageTreeState":
            roots.append(RootField(_key(node), _tree_root(query_type.fields[name], node)))
        elif name == "messageTreeStates":
            roots.append(RootField(_key(node), _page_root(query_type.fields[name], node)))
        elif name == "treeStateCounts":
            roots.append(RootField(_key(node), _counts_root(query_type.fields[name], node)))
        else:
            raise Unsupported(f"the field {name}", "unsupported_field")
    return Plan(
        operation_name=operation.name.value if operation.name else None,
        variables=Variables(schema, operation.variable_definitions or ()),
        roots=tuple(roots),
    )


def _fields(selection_set: SelectionSetNode | None) -> list[FieldNode]:
    """The selection's fields; fragments, directives and repeated keys need the full path."""
    if selection_set is None:
        raise Unsupported("no selection", "unsupported_field")
    nodes: list[FieldNode] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            raise Unsupported("fragment or directive", "fragments_or_directives")
        if _key(selection) in keys:
            raise Unsupported("field merging", "field_merging")
        keys.add(_key(selection))
        nodes.append(selection)
    return nodes


def _key(node: FieldNode) -> str:
    return node.alias.value if node.alias else node.name.value


def _constant(value: str) -> Any:
    async def run(_ctx: Context, _variables: VariableValues) -> str:
        return value

    return run


def _object(field: GraphQLField) -> GraphQLObjectType:
    named = get_named_type(field.type)
    assert isinstance(named, GraphQLObjectType), named
    return named


def _scalars(node: FieldNode, graphql_type: GraphQLObjectType) -> Field:
    name = node.name.value
    if name == "__typename":
        typename = graphql_type.name
        return Field(_key(node), lambda _s, _a: typename, plain, False)
    table = scalar_fields(graphql_type)
    if name not in table:
        raise Unsupported(f"the field {name}", "unsupported_field")
    attribute, writer, nullable = table[name]
    return Field(_key(node), None, writer, nullable, attribute=attribute)


def _message_fields(node: FieldNode, message_type: GraphQLObjectType) -> tuple[Field, ...]:
    return tuple(_scalars(f, message_type) for f in _fields(node.selection_set))


@dataclass(slots=True)
class _Needs:
    """What the tree selections of one root field read besides the trees, for all of them at
    once: the root messages' columns, and each tree's messages (`messages`, one read of the
    whole tree per batch of trees, as `Loaders.message_tree` reads them for the full path)."""

    columns: Columns = dataclass_field(default_factory=Columns)
    root: bool = False
    message_lists: list[tuple[str, GraphQLField, FieldNode]] = dataclass_field(default_factory=list)
    """Per `messages` field: its key in the aux data, its definition and its node (its
    arguments are read per request: they may be variables)."""


def _tree_messages(tree_type: GraphQLObjectType, node: FieldNode, needs: _Needs) -> tuple[Any, Any]:
    """`MessageTreeState.messages`: the getter and the writer of its list."""
    definition = tree_type.fields[node.name.value]
    slot = f"messages:{len(needs.message_lists)}"
    needs.message_lists.append((slot, definition, node))
    write_message = object_writer(_message_fields(node, _object(definition)))

    def get(tree: TreeState, aux: Aux) -> list[Message]:
        include_deleted, include_spam = aux[slot]
        found: MessageTree = aux[TREES][tree.message_tree_id]
        return found.messages_in_order(include_deleted=include_deleted, include_spam=include_spam)

    def write(found: list[Message]) -> list[dict[str, Any]]:
        return [write_message(m, {}) for m in found]

    return get, write


def _tree_fields(
    selection_set: SelectionSetNode | None, needs: _Needs, tree_type: GraphQLObjectType
) -> tuple[Field, ...]:
    """The fields of a MessageTreeState selection; what they read besides the trees goes to
    `needs` (the root messages' selected attributes to its columns: one statement reads them
    for every selection of the root field)."""
    fields: list[Field] = []
    for node in _fields(selection_set):
        name = node.name.value
        if name == "isTerminal":
            fields.append(
                Field(_key(node), lambda t, _a: t.state in states.TERMINAL_STATES, plain, False)
            )
        elif name == "allowedTransitions":
            fields.append(
                Field(
                    _key(node),
                    lambda t, _a: [s.name for s in transitions.allowed_targets(t.state)],
                    plain,
                    False,
                )
            )
        elif name == "rootMessage":
            needs.root = True
            message_type = _object(tree_type.fields[name])
            write_message = object_writer(_message_fields(node, message_type), needs.columns)
            fields.append(
                Field(
                    _key(node),
                    lambda t, a: a[ROOT].get(t.message_tree_id),
                    lambda m, write=write_message: write(m, {}),  # type: ignore[misc]
                    True,
                )
            )
        elif name == "messages":
            get, write = _tree_messages(tree_type, node, needs)
            fields.append(Field(_key(node), get, write, False))
        else:
            fields.append(_scalars(node, tree_type))
    return tuple(fields)


async def _prefetch(
    ctx: Context, items: list[TreeState], needs: _Needs, variables: VariableValues
) -> Aux:
    aux: Aux = {ROOT: {}}
    if not items:
        return aux
    ids = [t.message_tree_id for t in items]
    if needs.root:
        aux[ROOT] = await trees.fetch_root_message_columns(ctx, ids, tuple(needs.columns.names))
    if needs.message_lists:
        for slot, definition, node in needs.message_lists:
            arguments = get_argument_values(definition, node, variables)
            # As the schema's resolver reads them: null is the default for both.
            aux[slot] = (
                bool(arguments.get("includeDeleted")),
                arguments.get("includeSpam") is not False,
            )
        # Through the request's loader, as the full path: a tree too large raises, and the
        # full path then answers with its error.
        found = await ctx.loaders.message_tree.load_many(ids)
        aux[TREES] = dict(zip(ids, found, strict=True))
    return aux


def _tree_root(field: GraphQLField, node: FieldNode) -> Any:
    needs = _Needs()
    write = object_writer(_tree_fields(node.selection_set, needs, _object(field)))

    async def run(ctx: Context, variables: VariableValues) -> Any:
        arguments = get_argument_values(field, node, variables)
        tree = await trees.fetch_tree(ctx, arguments["messageTreeId"])
        if tree is None:
            return None
        return write(tree, await _prefetch(ctx, [tree], needs, variables))

    return run


def _filter(value: dict[str, Any] | None) -> TreeFilter | None:
    if value is None:
        return None
    return MessageTreeStateFilter(
        states=value.get("states"),
        langs=value.get("langs"),
        active=value.get("active"),
        origin=value.get("origin"),
        won_lottery_after=value.get("wonLotteryAfter"),
        won_lottery_before=value.get("wonLotteryBefore"),
    ).to_domain()


def _page_root(field: GraphQLField, node: FieldNode) -> Any:
    connection = _object(field)
    tree_type = _object(connection.fields["nodes"])
    edge_type = _object(connection.fields["edges"])
    parts: list[tuple[str, str, Any]] = []  # (key, kind, sub-plan)
    needs = _Needs()
    for child in _fields(node.selection_set):
        name, key = child.name.value, _key(child)
        if name == "__typename":
            parts.append((key, "typename", connection.name))
        elif name == "totalCount":
            parts.append((key, "total", None))
        elif name == "nodes":
            tree_fields = _tree_fields(child.selection_set, needs, tree_type)
            parts.append((key, "nodes", object_writer(tree_fields)))
        elif name == "edges":
            edge_parts: list[tuple[str, str, Any]] = []
            for edge_child in _fields(child.selection_set):
                edge_name, edge_key = edge_child.name.value, _key(edge_child)
                if edge_name == "cursor":
                    edge_parts.append((edge_key, "cursor", None))
                elif edge_name == "__typename":
                    edge_parts.append((edge_key, "typename", edge_type.name))
                elif edge_name == "node":
                    tree_fields = _tree_fields(edge_child.selection_set, needs, tree_type)
                    edge_parts.append((edge_key, "node", object_writer(tree_fields)))
                else:
                    raise Unsupported(f"the field {edge_name}", "unsupported_field")
            parts.append((key, "edges", tuple(edge_parts)))
        elif name == "pageInfo":
            info_type = _object(connection.fields[name])
            info = tuple(_scalars(f, info_type) for f in _fields(child.selection_set))
            parts.append((key, "pageInfo", object_writer(info)))
        else:
            raise Unsupported(f"the field {name}", "unsupported_field")

    async def run(ctx: Context, variables: VariableValues) -> Any:
        arguments = get_argument_values(field, node, variables)
        first = arguments.get("first")
        page: TreePage = await trees.list_trees(
            ctx,
            _filter(arguments.get("filter")),
            arguments.get("orderBy") or TreeOrder.MESSAGE_TREE_ID_ASC,
            ctx.limits.default_page_size if first is None else first,
            arguments.get("after"),
            prime=False,  # a compiled plan never loads trees by id
        )
        nodes = [edge.node for edge in page.edges]
        aux = await _prefetch(ctx, nodes, needs, variables)
        result: dict[str, Any] = {}
        for key, kind, sub in parts:
            if kind == "typename":
                result[key] = sub
            elif kind == "total":
                result[key] = await page.total_count(ctx)
            elif kind == "nodes":
                result[key] = [sub(tree, aux) for tree in nodes]
            elif kind == "pageInfo":
                result[key] = sub(page, aux)
            else:
                result[key] = [_edge(sub, edge, aux) for edge in page.edges]
        return result

    return run


def _edge(parts: tuple[tuple[str, str, Any], ...], edge: Any, aux: Aux) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, kind, sub in parts:
        if kind == "cursor":
            result[key] = edge.cursor
        elif kind == "typename":
            result[key] = sub
        else:
            result[key] = sub(edge.node, aux)
    return result


def _counts_root(field: GraphQLField, node: FieldNode) -> Any:
    count_type = _object(field)
    write = object_writer(tuple(_scalars(f, count_type) for f in _fields(node.selection_set)))

    async def run(ctx: Context, variables: VariableValues) -> Any:
        arguments = get_argument_values(field, node, variables)
        counts = await trees.count_trees(
            ctx, arguments["groupBy"], _filter(arguments.get("filter"))
        )
        return [write(count, {}) for count in counts]

    return run
