"""What Treegate relies on in its dependencies beyond their public API, one test each.

Each is used in one place only, named in the test. When an upgrade changes one of them, its test
fails here with the dependency's name and version, instead of a server misbehaving quietly.
Everything else Treegate uses is its dependencies' public API.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from importlib.metadata import version
from typing import Any

import pytest
from graphql import GraphQLError, GraphQLSchema, get_variable_values, parse, validate
from graphql.language import OperationDefinitionNode

from gql.cli import lighten_log_records
from schema.build import (
    VALIDATION_RULES,
    IntrospectionDepthRule,
    LocatedValuesRule,
    build_schema,
    graphql_core_schema,
)
from schema.fast.plan import Unsupported
from schema.fast.variables import Variables
from schema.limits import INTROSPECTION_DEPTH, is_token_limit


def named(dependency: str, what: str, where: str) -> str:
    return f"{dependency} {version(dependency)} changed {what}: update {where}"


def test_strawberry_keeps_the_graphql_core_schema_in_underscore_schema() -> None:
    schema = build_schema()
    message = named("strawberry-graphql", "Schema._schema", "schema/build.py graphql_core_schema")
    try:
        core = graphql_core_schema(schema)
    except (AttributeError, TypeError) as exc:
        pytest.fail(f"{message} ({exc})")
    assert isinstance(core, GraphQLSchema), message
    assert "MessageTreeState" in core.type_map, message


def test_graphql_core_introspection_depth_rule_reports_through_report_error() -> None:
    """`schema.build.IntrospectionDepthRule` codes the rule's errors where they are reported."""
    circular = (
        "{ __schema { types { fields { type { fields { type { fields { type { fields { type "
        "{ name } } } } } } } } } } }"
    )
    errors = validate(graphql_core_schema(build_schema()), parse(circular), VALIDATION_RULES)
    message = named(
        "graphql-core", "MaxIntrospectionDepthRule", "schema/build.py IntrospectionDepthRule"
    )
    assert IntrospectionDepthRule in VALIDATION_RULES, message
    assert [(e.extensions or {}).get("code") for e in errors] == [INTROSPECTION_DEPTH], message


def test_graphql_core_checks_literal_values_through_enter_value_methods() -> None:
    """`schema.build.LocatedValuesRule` places a scalar's own error at the value it refused."""
    document = parse('{ messageTreeState(messageTreeId: "nope") { state } }')
    errors = validate(graphql_core_schema(build_schema()), document, VALIDATION_RULES)
    message = named("graphql-core", "ValuesOfCorrectTypeRule", "schema/build.py LocatedValuesRule")
    assert LocatedValuesRule in VALIDATION_RULES, message
    assert [e.formatted.get("locations") for e in errors] == [[{"line": 1, "column": 35}]], message


def test_graphql_core_token_limit_is_told_from_a_syntax_error_by_its_message() -> None:
    message = named(
        "graphql-core", "the message of parse's max_tokens error", "schema/limits.py is_token_limit"
    )
    with pytest.raises(GraphQLError) as over:
        parse("{ a b c d e f g h i j }", max_tokens=5)
    assert is_token_limit(over.value), f"{message}: {over.value}"
    with pytest.raises(GraphQLError) as syntax:
        parse("{ a b ", max_tokens=5)
    assert not is_token_limit(syntax.value), f"{message}: {syntax.value}"


VARIABLES = [
    ("($id: UUID!)", {"id": "6c0ba4a9-1d4c-4b0a-9d1e-0d3b1d6d8b1a"}),
    ("($f: MessageTreeStateFilter)", {"f": {"states": ["GROWING", "RANKING"], "langs": ["en"]}}),
    ("($n: Int = 7)", {}),
    ("($n: Int = 7)", {"n": None}),
    ("($g: [CountDimension!]! = [STATE])", {"g": ["LANG", "STATE"]}),
    ("($f: MessageTreeStateFilter)", {}),
]


@pytest.mark.parametrize(("signature", "inputs"), VARIABLES)
def test_graphql_core_variable_internals_coerce_as_get_variable_values(
    signature: str, inputs: dict[str, Any]
) -> None:
    """The compiled lane coerces variables with graphql-core helpers it does not export
    (`get_variable_signature`, `maybe_use_default_value`, `input_is_nested_too_deeply`,
    `VariableValueSource`): the values must equal what its public `get_variable_values` gives."""
    schema = graphql_core_schema(build_schema())
    (operation,) = parse(f"query Q{signature} {{ __typename }}").definitions
    assert isinstance(operation, OperationDefinitionNode)
    definitions = operation.variable_definitions or ()
    message = named(
        "graphql-core", "the variable coercion helpers", "schema/fast/variables.py Variables"
    )
    public = get_variable_values(schema, definitions, inputs)
    assert not isinstance(public, list), public
    try:
        ours = Variables(schema, definitions).coerce(inputs)
    except Unsupported as exc:
        pytest.fail(f"{message} ({exc})")
    assert ours.coerced == public.coerced, message
    assert ours.sources.keys() == public.sources.keys(), message


@pytest.fixture
def logging_defaults() -> Iterator[None]:
    saved = (
        logging._srcfile,
        logging.logThreads,
        logging.logProcesses,
        logging.logMultiprocessing,
    )
    try:
        yield
    finally:
        (
            logging._srcfile,
            logging.logThreads,
            logging.logProcesses,
            logging.logMultiprocessing,
        ) = saved


def test_python_logging_skips_the_caller_lookup_without_srcfile(logging_defaults: None) -> None:
    message = (
        f"Python {sys.version.split()[0]} changed logging._srcfile: update gql/cli.py "
        "lighten_log_records"
    )
    assert hasattr(logging, "_srcfile"), message
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("treegate.test.dependencies")
    logger.propagate = False
    logger.addHandler(Keep())
    logger.setLevel(logging.INFO)
    logger.info("with its caller")
    lighten_log_records()
    logger.info("without")
    assert records[0].funcName == "test_python_logging_skips_the_caller_lookup_without_srcfile"
    assert records[1].funcName != records[0].funcName, message
    assert records[1].lineno == 0, message


async def test_sqlalchemy_greenlet_spawn_runs_sync_pool_calls() -> None:
    """`db.session` hands a raw pooled connection back with `sqlalchemy.util.greenlet_spawn`
    (the pool's sync API awaits the driver inside it); SQLAlchemy does not document it."""
    try:
        from sqlalchemy.util import greenlet_spawn
    except ImportError as exc:
        pytest.fail(
            f"{named('sqlalchemy', 'sqlalchemy.util.greenlet_spawn', 'db/session.py')}: {exc}"
        )
    assert await greenlet_spawn(lambda: 42) == 42


async def test_opentelemetry_sqlalchemy_instrumentation_spans_this_sqlalchemy() -> None:
    """`gql.tracing.Tracing.start` instruments the engines with `skip_dep_check=True`: the
    instrumentation's declared range may end below the SQLAlchemy installed. Its spans must
    still come, one per statement, with the statement's text and no parameter values."""
    from opentelemetry import trace
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from sqlalchemy import text
    from sqlalchemy.ext.asyncio import create_async_engine

    message = named(
        "opentelemetry-instrumentation-sqlalchemy",
        f"what it does with sqlalchemy {version('sqlalchemy')}",
        "gql/tracing.py Tracing.start",
    )
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    engine = create_async_engine("sqlite+aiosqlite://")
    instrumentor = SQLAlchemyInstrumentor()
    instrumentor.instrument(
        engines=[engine.sync_engine], tracer_provider=provider, skip_dep_check=True
    )
    try:
        with provider.get_tracer("test").start_as_current_span("request"):
            async with engine.connect() as conn:
                await conn.execute(text("SELECT :secret"), {"secret": "p4r4m-v4lue"})
    finally:
        instrumentor.uninstrument()
        await engine.dispose()
    spans = exporter.get_finished_spans()
    (request,) = [s for s in spans if s.name == "request"]
    statements = [s for s in spans if (s.attributes or {}).get("db.statement")]
    assert [s.attributes["db.statement"] for s in statements] == ["SELECT ?"], message  # type: ignore[index]
    assert statements[0].kind is trace.SpanKind.CLIENT, message
    assert statements[0].parent is not None, message
    assert request.context is not None
    assert statements[0].parent.span_id == request.context.span_id, message
    assert "p4r4m-v4lue" not in repr([dict(s.attributes or {}) for s in spans]), message
