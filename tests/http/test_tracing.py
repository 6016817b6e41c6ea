"""OpenTelemetry tracing (gql/tracing.py), on a real server: uvicorn in this process, real HTTP.

Spans go to the SDK's in-memory exporter, each as it ends; the tests wait for the request spans
they expect (a request's span ends after its answer was sent), never for a while.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry.context import Context
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from sqlalchemy.ext.asyncio import AsyncEngine

from db import keys, statements
from domain.transitions import Role
from gql.app import create_app
from gql.http import GraphQLEndpoint, access_log
from gql.settings import Settings
from gql.tracing import TracedEndpoint, TracingConfigError, provider_from_environment
from schema.fast.plan import Plan
from tests.factories import add_tree

API_KEY = "tg_tracing_secret_key_5f0c2e9d81"
SECRET_LANG = "xq-secret-7731"
"""A variable's value no span may carry."""
TREE = "query OneTree($id: UUID!) { messageTreeState(messageTreeId: $id) { state lang } }"
PAGE = (
    "query Page($langs: [String!]) { messageTreeStates(first: 5, filter: {langs: $langs}) "
    "{ totalCount nodes { messageTreeId state } } }"
)
COUNTS = "query Counts { treeStateCounts { state count } }"
SQL_SCOPES = {"opentelemetry.instrumentation.sqlalchemy", "treegate"}


class Exported(SpanProcessor):
    """Wakes the waiting test whenever a span ended (after the in-memory exporter has it)."""

    def __init__(self) -> None:
        self.changed = asyncio.Event()

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        return

    def on_end(self, span: ReadableSpan) -> None:
        self.changed.set()


@dataclass
class Traced:
    client: httpx.AsyncClient
    exporter: InMemorySpanExporter
    exported: Exported
    app: Any

    def spans(self) -> tuple[ReadableSpan, ...]:
        return self.exporter.get_finished_spans()

    def servers(self) -> list[ReadableSpan]:
        return [s for s in self.spans() if s.kind is SpanKind.SERVER]

    async def wait_for_servers(self, count: int) -> list[ReadableSpan]:
        """The first `count` request spans, once they have all ended."""
        async with asyncio.timeout(30):  # a bound on a failure, not a wait for time to pass
            while len(self.servers()) < count:
                self.exported.changed.clear()
                await self.exported.changed.wait()
        return self.servers()

    def descendants(self, root: ReadableSpan) -> list[ReadableSpan]:
        assert root.context is not None
        found: list[ReadableSpan] = []
        parents = {root.context.span_id}
        for span in sorted(self.spans(), key=lambda s: s.start_time or 0):
            if span.parent is not None and span.parent.span_id in parents:
                assert span.context is not None
                found.append(span)
                parents.add(span.context.span_id)
        return found

    def children(self, root: ReadableSpan) -> list[ReadableSpan]:
        assert root.context is not None
        return [
            s
            for s in self.spans()
            if s.parent is not None and s.parent.span_id == root.context.span_id
        ]


def sql_spans(spans: Sequence[ReadableSpan]) -> list[ReadableSpan]:
    return [
        s
        for s in spans
        if s.instrumentation_scope is not None
        and s.instrumentation_scope.name in SQL_SCOPES
        and (s.attributes or {}).get("db.statement")
    ]


@asynccontextmanager
async def traced_server(settings: Settings) -> AsyncIterator[Traced]:
    """The app, with an in-memory exporter, served by uvicorn on a free port of 127.0.0.1."""
    exporter = InMemorySpanExporter()
    exported = Exported()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    provider.add_span_processor(exported)
    app = create_app(settings, tracer_provider=provider)
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=None))
    try:
        async with asyncio.timeout(30):
            while not server.started:
                if serving.done():
                    serving.result()  # raises what failed the start
                    pytest.fail("the server stopped before it started")
                await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield Traced(client, exporter, exported, app)
    finally:
        server.should_exit = True
        await serving
        provider.shutdown()
    # The lifespan's end took back what tracing installed in the process.
    assert statements.traced is None
    assert not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
    assert not access_log.filters


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def assert_secret_free(spans: Sequence[ReadableSpan], *secrets: str) -> None:
    """No span's name, attribute or event carries any of `secrets`."""
    assert spans
    for span in spans:
        texts = [span.name, *(str(v) for v in (span.attributes or {}).values())]
        for event in span.events:
            texts += [event.name, *(str(v) for v in (event.attributes or {}).values())]
        for text in texts:
            for secret in secrets:
                assert secret not in text, (span.name, text)


def assert_statements_disjoint(spans: Sequence[ReadableSpan]) -> None:
    """One request's statements run one at a time on its connection: SQL spans that overlap (or
    nest) would be one statement spanned twice."""
    ordered = sorted(spans, key=lambda s: s.start_time or 0)
    for before, after in itertools.pairwise(ordered):
        assert (before.end_time or 0) <= (after.start_time or 0), (
            attributes(before).get("db.statement"),
            attributes(after).get("db.statement"),
        )


@pytest.fixture
async def keyed(engine: AsyncEngine) -> str:
    async with engine.begin() as conn:
        await keys.insert(conn, "tracer", Role.READER, API_KEY, datetime.now(UTC))
        await add_tree(conn)
    return API_KEY


async def test_a_request_is_one_server_span_with_its_children_on_each_lane(
    settings: Settings, keyed: str, backend: str
) -> None:
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    parent_id = "00f067aa0ba902b7"
    sent_key = {"Authorization": f"Bearer {keyed}"}
    async with traced_server(settings) as traced:
        assert type(traced.app.state.endpoint) is TracedEndpoint
        fast_path = traced.app.state.schema.fast_path
        assert isinstance(fast_path.plan(TREE), Plan)  # both answered by the compiled lane
        assert isinstance(fast_path.plan(PAGE), Plan)
        tree_id = str(uuid.uuid4())
        compiled = await traced.client.post(
            "/graphql",
            json={"query": TREE, "variables": {"id": tree_id}},
            headers={**sent_key, "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        page = await traced.client.post(
            "/graphql",
            json={"query": PAGE, "variables": {"langs": [SECRET_LANG]}},
            headers=sent_key,
        )
        traced.app.state.schema.fast_path_enabled = False  # Strawberry's path from here
        full = await traced.client.post(
            "/graphql",
            json={"query": PAGE, "variables": {"langs": [SECRET_LANG]}},
            headers=sent_key,
        )
        servers = await traced.wait_for_servers(3)
    assert [r.status_code for r in (compiled, page, full)] == [200, 200, 200]
    assert compiled.json() == {"data": {"messageTreeState": None}}
    assert (
        page.json()
        == full.json()
        == {"data": {"messageTreeStates": {"totalCount": 0, "nodes": []}}}
    )
    assert len(servers) == 3

    for span, name in zip(servers, ("OneTree", "Page", "Page"), strict=True):
        assert span.name == "POST /graphql"
        found = attributes(span)
        assert found["http.request.method"] == "POST"
        assert found["url.path"] == "/graphql"
        assert found["http.response.status_code"] == 200
        assert found["graphql.operation.name"] == name
        assert found["graphql.operation.type"] == "query"
        assert found["treegate.outcome"] == "ok"
        assert found["treegate.role"] == "reader"
        assert span.status.status_code is StatusCode.UNSET
        children = traced.children(span)
        assert {c.name for c in children} >= {"graphql.parse_validate", "graphql.execute"}
        (execute,) = [c for c in children if c.name == "graphql.execute"]
        assert attributes(execute)["graphql.operation.name"] == name
        statements_run = sql_spans(traced.descendants(span))
        assert statements_run, f"no SQL span under {name}"
        assert all(s.kind is SpanKind.CLIENT for s in statements_run)
        assert_statements_disjoint(statements_run)
        # The key's lookup, and the reads under the execution.
        assert sql_spans(traced.descendants(execute))
        assert any("api_key" in attributes(s)["db.statement"] for s in statements_run)

    # The caller's trace continues: the request span is a child of the caller's span.
    first = servers[0]
    assert first.context is not None
    assert first.parent is not None
    assert format_trace_id(first.context.trace_id) == trace_id
    assert format_span_id(first.parent.span_id) == parent_id
    assert first.parent.is_remote
    assert format_trace_id(servers[1].context.trace_id) != trace_id

    # On PostgreSQL the request's reads (both lanes') run on asyncpg itself, out of SQLAlchemy's
    # sight, with spans of Treegate's; the key's lookup goes through SQLAlchemy. On SQLite
    # every statement goes through SQLAlchemy.
    expected = (
        {"opentelemetry.instrumentation.sqlalchemy", "treegate"}
        if backend == "postgresql"
        else {"opentelemetry.instrumentation.sqlalchemy"}
    )
    for span in servers:
        found_sql = sql_spans(traced.descendants(span))
        assert {s.instrumentation_scope.name for s in found_sql} == expected  # type: ignore[union-attr]
        raw = [s for s in found_sql if s.instrumentation_scope.name == "treegate"]  # type: ignore[union-attr]
        assert {attributes(s)["db.system"] for s in raw} <= {"postgresql"}
        if backend == "postgresql":
            assert any("message_tree_state" in attributes(s)["db.query.text"] for s in raw)
    assert_secret_free(traced.spans(), keyed, SECRET_LANG, tree_id)


HALT = "mutation Halt($id: UUID!) { haltTree(input: {messageTreeId: $id}) { __typename } }"
MODERATOR_KEY = "tg_tracing_moderator_key_0b7d1e"


async def test_a_mutation_s_writes_are_spans_under_its_execution(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        tree = str(await add_tree(conn))
        await keys.insert(conn, "moderator", Role.MODERATOR, MODERATOR_KEY, datetime.now(UTC))
    async with traced_server(settings) as traced:
        done = await traced.client.post(
            "/graphql",
            json={"query": HALT, "variables": {"id": tree}},
            headers={"X-API-Key": MODERATOR_KEY},
        )
        (server,) = await traced.wait_for_servers(1)
    assert done.json() == {"data": {"haltTree": {"__typename": "TransitionApplied"}}}
    found = attributes(server)
    assert found["graphql.operation.type"] == "mutation"
    assert found["graphql.operation.name"] == "Halt"
    assert found["treegate.role"] == "moderator"
    assert found["treegate.outcome"] == "ok"
    (execute,) = [s for s in traced.children(server) if s.name == "graphql.execute"]
    assert attributes(execute)["graphql.operation.type"] == "mutation"
    written = sql_spans(traced.descendants(execute))
    texts = [attributes(s)["db.statement"].upper() for s in written]
    assert any(t.startswith("SELECT") for t in texts), texts  # the tree, read for update
    assert any(t.startswith("UPDATE") for t in texts), texts  # its new state
    assert any("INSERT INTO TREEGATE_TRANSITION" in t for t in texts), texts  # the log
    assert_statements_disjoint(sql_spans(traced.descendants(server)))
    assert_secret_free(traced.spans(), MODERATOR_KEY, tree)


async def test_the_access_log_line_carries_the_trace_id(
    settings: Settings, engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="treegate.access"):
        async with traced_server(settings) as traced:
            answer = await traced.client.post("/graphql", json={"query": COUNTS})
            (server,) = await traced.wait_for_servers(1)
    assert answer.status_code == 200
    assert server.context is not None
    lines = [r.getMessage() for r in caplog.records if r.name == "treegate.access"]
    assert len(lines) == 1
    assert lines[0].startswith(f"request_id={answer.headers['x-request-id']} method=POST")
    assert lines[0].endswith(f" trace_id={format_trace_id(server.context.trace_id)}")
    assert attributes(server)["treegate.role"] == "reader"  # anonymous, in development


async def test_get_queries_cached_answers_batches_and_refusals(
    settings: Settings, engine: AsyncEngine
) -> None:
    cached = settings.model_copy(update={"response_cache_s": 60, "max_batch": 5})
    async with traced_server(cached) as traced:
        client = traced.client
        first = await client.get("/graphql", params={"query": COUNTS})
        again = await client.get("/graphql", params={"query": COUNTS})
        unchanged = await client.get(
            "/graphql", params={"query": COUNTS}, headers={"If-None-Match": first.headers["etag"]}
        )
        batch = await client.post(
            "/graphql",
            json=[{"query": COUNTS}, {"query": TREE, "variables": {"id": str(uuid.uuid4())}}],
        )
        refused = await client.post(
            "/graphql", json={"query": COUNTS}, headers={"Authorization": "Bearer unknown-key"}
        )
        invalid = await client.post("/graphql", json={"query": "{ nope }"})
        servers = await traced.wait_for_servers(6)
    assert [r.status_code for r in (first, again, unchanged, batch, refused, invalid)] == [
        200,
        200,
        304,
        200,
        401,
        200,
    ]
    computed, shared, not_modified, batched, unknown, bad = servers
    for span in (computed, shared, not_modified):
        assert span.name == "GET /graphql"
        assert attributes(span)["graphql.operation.name"] == "Counts"
        assert attributes(span)["graphql.operation.type"] == "query"
        assert attributes(span)["treegate.outcome"] == "ok"
    assert attributes(not_modified)["http.response.status_code"] == 304
    # Only the first was executed; the others were answered from the shared answer.
    assert "graphql.execute" in {s.name for s in traced.descendants(computed)}
    assert "graphql.execute" not in {s.name for s in traced.descendants(shared)}
    assert "graphql.execute" not in {s.name for s in traced.descendants(not_modified)}

    operations = [s for s in traced.children(batched) if s.name == "graphql.operation"]
    assert len(operations) == 2
    for operation, name in zip(
        sorted(operations, key=lambda s: s.start_time or 0), ("Counts", "OneTree"), strict=True
    ):
        assert attributes(operation)["graphql.operation.name"] == name
        assert attributes(operation)["treegate.outcome"] == "ok"
        names = [s.name for s in traced.children(operation)]
        assert "graphql.parse_validate" in names
        assert "graphql.execute" in names
        assert sql_spans(traced.descendants(operation))

    assert attributes(unknown)["http.response.status_code"] == 401
    assert attributes(unknown)["treegate.outcome"] == "refused"
    assert "treegate.role" not in attributes(unknown)
    assert not [s for s in traced.children(unknown) if s.name.startswith("graphql.")]
    assert attributes(bad)["treegate.outcome"] == "error"
    (checking,) = [s for s in traced.children(bad) if s.name == "graphql.parse_validate"]
    assert attributes(checking)["graphql.errors"] == 1
    assert "graphql.execute" not in {s.name for s in traced.children(bad)}
    assert_secret_free(traced.spans(), "unknown-key")


async def test_a_database_fault_is_a_503_span_with_an_error_status() -> None:
    down = Settings(database_url="postgresql://postgres@127.0.0.1:1/nope", db_connect_timeout=2)
    async with traced_server(down) as traced:
        answer = await traced.client.post("/graphql", json={"query": COUNTS})
        (server,) = await traced.wait_for_servers(1)
    assert answer.status_code == 503
    assert attributes(server)["http.response.status_code"] == 503
    assert attributes(server)["treegate.outcome"] == "unavailable"
    assert server.status.status_code is StatusCode.ERROR


async def test_without_tracing_nothing_changes(
    settings: Settings, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
    app = create_app(settings)
    assert type(app.state.endpoint) is GraphQLEndpoint  # the plain endpoint: no tracing layer
    assert app.state.tracing is None
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            answer = await c.post("/graphql", json={"query": COUNTS})
        assert statements.traced is None
        assert not SQLAlchemyInstrumentor().is_instrumented_by_opentelemetry
        assert not access_log.filters
    assert answer.status_code == 200
    assert "traceparent" not in answer.headers


def test_the_provider_follows_the_otel_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_SERVICE_NAME", "OTEL_RESOURCE_ATTRIBUTES"):
        monkeypatch.delenv(name, raising=False)

    def exporters(provider: TracerProvider) -> list[type]:
        processors = provider._active_span_processor._span_processors
        return [type(p.span_exporter) for p in processors]  # type: ignore[attr-defined]

    console = provider_from_environment({"OTEL_TRACES_EXPORTER": "console"})
    assert console.resource.attributes["service.name"] == "treegate"
    assert exporters(console) == [ConsoleSpanExporter]
    console.shutdown()
    monkeypatch.setenv("OTEL_SERVICE_NAME", "gateway-eu")
    otlp = provider_from_environment({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"})
    assert otlp.resource.attributes["service.name"] == "gateway-eu"
    assert [e.__name__ for e in exporters(otlp)] == ["OTLPSpanExporter"]
    otlp.shutdown()
    refusals: list[Callable[[], object]] = [
        lambda: provider_from_environment({"OTEL_TRACES_EXPORTER": "zipkin"}),
        lambda: provider_from_environment({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}),
    ]
    for refused in refusals:
        with pytest.raises(TracingConfigError):
            refused()
