"""OpenTelemetry tracing, used only when it is on (`Settings.tracing_enabled`).

With tracing off nothing here is imported: `gql.app.create_app` builds the plain
`gql.http.GraphQLEndpoint` and installs no instrumentation, so a request costs what it did.
With it on, `TracedEndpoint` serves /graphql instead (the same endpoint, a subclass) and
`Tracing` installs the instrumentation for the app's lifespan:

- a SERVER span per /graphql request, a child of the caller's span when the request carries a
  W3C `traceparent` (the propagators are OTEL_PROPAGATORS', by default W3C trace context and
  baggage): HTTP method, path, route and status code, the operation's name and type, its
  outcome and the caller's role; never the API key, the document or the variables' values;
- children for parsing and validation (`graphql.parse_validate`) and for each execution
  (`graphql.execute`; run again on a connection lost, or on the primary after a replica failed:
  one span each); in a batch, one `graphql.operation` span per operation holds them;
- a CLIENT span per SQL statement: SQLAlchemy's (OpenTelemetry's SQLAlchemy instrumentation, on
  the app's engines) and those the compiled lane runs on asyncpg itself, out of SQLAlchemy's
  sight (`db.statements.traced`): the statement's text, never its parameters. SQL spans are
  made inside a request's trace only: background work (pruning, health checks) makes none;
- the trace id at the end of each access log line (`trace_id=...`).

Spans are exported in batches (`BatchSpanProcessor`, OTEL_BSP_* variables) by the exporters
OTEL_TRACES_EXPORTER names: `otlp` (the default; OTLP over HTTP/protobuf, OTEL_EXPORTER_OTLP_*
variables), `console`. The resource is OTEL_SERVICE_NAME's and OTEL_RESOURCE_ATTRIBUTES' (service
name `treegate` unless named), the sampler OTEL_TRACES_SAMPLER's (default: parent-based, always
on).
"""

from __future__ import annotations

import contextvars
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from graphql import DocumentNode, ExecutionResult, GraphQLError
from opentelemetry import propagate, trace
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    ConsoleSpanExporter,
    SpanExporter,
)
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, format_trace_id
from opentelemetry.util.types import Attributes
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.types import Receive, Scope, Send

from db import statements
from domain.outcomes import Identity
from gql.auth import Caller
from gql.http import (
    OPERATION_KEY,
    OPERATION_TYPE_KEY,
    OUTCOME_KEY,
    GraphQLEndpoint,
    Outcome,
    Params,
    access_log,
    header_map,
    outcome_of,
)
from resolvers.caches import Caches

TRACER_NAME = "treegate"
DEFAULT_SERVICE_NAME = "treegate"


class TracingConfigError(ValueError):
    """OTEL_* variables Treegate cannot trace with (said at start, not per request)."""


def exporters_from(environ: Mapping[str, str]) -> list[SpanExporter]:
    """The span exporters OTEL_TRACES_EXPORTER names (default `otlp`)."""
    names = [
        name.strip().lower()
        for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")
        if name.strip()
    ] or ["otlp"]
    found: list[SpanExporter] = []
    for name in names:
        if name == "none":
            continue
        if name == "console":
            found.append(ConsoleSpanExporter())
        elif name == "otlp":
            protocol = (
                environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
                or environ.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "http/protobuf"
            ).strip()
            if protocol != "http/protobuf":
                raise TracingConfigError(
                    f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol}: Treegate exports OTLP over "
                    "http/protobuf only (port 4318, not gRPC's 4317)"
                )
            # Imported here: the exporter's protobuf modules are only needed to export.
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                OTLPSpanExporter,
            )

            found.append(OTLPSpanExporter())  # endpoint, headers, timeout: OTEL_EXPORTER_OTLP_*
        else:
            raise TracingConfigError(
                f"OTEL_TRACES_EXPORTER={name}: Treegate knows `otlp`, `console` and `none`"
            )
    return found


def provider_from_environment(environ: Mapping[str, str] | None = None) -> TracerProvider:
    """A tracer provider as the OTEL_* variables describe it, exporting in batches."""
    env = os.environ if environ is None else environ
    resource = Resource.create()  # OTEL_RESOURCE_ATTRIBUTES, OTEL_SERVICE_NAME
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # the sampler: OTEL_TRACES_SAMPLER
    for exporter in exporters_from(env):
        provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


class InTraceTracer(trace.Tracer):
    """A tracer whose spans are made only inside a trace: with no current span it hands out
    the invalid span, which records nothing. For instrumentation that would otherwise start a
    trace of its own for every statement of background work."""

    def __init__(self, tracer: trace.Tracer) -> None:
        self._tracer = tracer

    def start_span(
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        if not trace.get_current_span(context).get_span_context().is_valid:
            return trace.INVALID_SPAN
        return self._tracer.start_span(
            name,
            context,
            kind,
            attributes,
            links,
            start_time,
            record_exception,
            set_status_on_exception,
        )

    @contextmanager
    def start_as_current_span(  # type: ignore[override]
        self,
        name: str,
        context: Any = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Attributes = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
        end_on_exit: bool = True,
    ) -> Iterator[Span]:
        span = self.start_span(name, context, kind, attributes, links, start_time, record_exception)
        with trace.use_span(
            span,
            end_on_exit=end_on_exit,
            record_exception=record_exception,
            set_status_on_exception=set_status_on_exception,
        ) as current:
            yield current


class InTraceTracerProvider(trace.TracerProvider):
    """`provider`'s tracers, as `InTraceTracer`s."""

    def __init__(self, provider: trace.TracerProvider) -> None:
        self._provider = provider

    def get_tracer(
        self,
        instrumenting_module_name: str,
        instrumenting_library_version: str | None = None,
        schema_url: str | None = None,
        attributes: Attributes = None,
    ) -> trace.Tracer:
        return InTraceTracer(
            self._provider.get_tracer(
                instrumenting_module_name, instrumenting_library_version, schema_url, attributes
            )
        )


class TraceIdInAccessLog(logging.Filter):
    """Appends ` trace_id=<32 hex digits>` to the access log line of a traced request."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid and isinstance(record.args, tuple):
            record.msg = f"{record.msg} trace_id=%s"
            record.args = (*record.args, format_trace_id(context.trace_id))
        return True


def statement_span(tracer: trace.Tracer) -> Any:
    """`db.statements.traced`: a CLIENT span around one statement run on asyncpg itself, by
    the database semantic conventions (old and new attribute names, as SQLAlchemy's
    instrumentation may use either): its text, never its parameters."""

    def traced(sql: str) -> Any:
        words = sql.split(None, 1)
        operation = words[0].upper() if words else "SQL"
        return tracer.start_as_current_span(
            operation,
            kind=SpanKind.CLIENT,
            attributes={
                "db.system": "postgresql",
                "db.system.name": "postgresql",
                "db.statement": sql,
                "db.query.text": sql,
                "db.operation.name": operation,
            },
        )

    return traced


@dataclass
class Tracing:
    """The provider spans go to, and the instrumentation installed for the app's lifespan.

    `owned`: the provider was made from the environment, and is shut down (its last spans
    exported) when the app stops; a provider handed in is only flushed."""

    provider: TracerProvider
    owned: bool
    _instrumentor: SQLAlchemyInstrumentor | None = field(default=None, init=False)
    _log_filter: TraceIdInAccessLog = field(default_factory=TraceIdInAccessLog, init=False)

    @property
    def tracer(self) -> trace.Tracer:
        return self.provider.get_tracer(TRACER_NAME)

    def start(self, engines: Sequence[AsyncEngine]) -> None:
        """Instrument the engines' statements, the compiled lane's own, and the access log.

        The SQLAlchemy instrumentation is process-wide (it also wraps `create_engine` and
        `Engine.connect`): one traced app per process, as `treegate serve` runs it."""
        in_trace = InTraceTracerProvider(self.provider)
        instrumentor = SQLAlchemyInstrumentor()
        if instrumentor.is_instrumented_by_opentelemetry:
            raise RuntimeError("SQLAlchemy is already instrumented in this process")
        instrumentor.instrument(
            engines=[engine.sync_engine for engine in engines],
            tracer_provider=in_trace,
            # Its declared range ends below SQLAlchemy 2.1, which it works with as it is (the
            # events it listens to are unchanged): tests/test_dependencies.py checks it.
            skip_dep_check=True,
        )
        self._instrumentor = instrumentor
        statements.traced = statement_span(InTraceTracer(self.tracer))
        access_log.addFilter(self._log_filter)

    def stop(self) -> None:
        """Take every patch back (other apps in the process are untraced again), and export
        what is left."""
        access_log.removeFilter(self._log_filter)
        statements.traced = None
        if self._instrumentor is not None:
            self._instrumentor.uninstrument()
            self._instrumentor = None
        if self.owned:
            self.provider.shutdown()
        else:
            self.provider.force_flush()


@dataclass(frozen=True, slots=True)
class _Request:
    span: Span
    state: dict[str, Any]


_request: contextvars.ContextVar[_Request] = contextvars.ContextVar("treegate_traced_request")
_operation: contextvars.ContextVar[dict[str, Any]] = contextvars.ContextVar(
    "treegate_traced_operation"
)
"""The state of the operation being run (the request's, or one of a batch's)."""


class TracedEndpoint(GraphQLEndpoint):
    """`GraphQLEndpoint`, each request in a span of its own (see the module's docstring)."""

    def __init__(self, *args: Any, tracing: Tracing, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.tracing = tracing
        self.tracer = tracing.tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        carrier = header_map(scope)
        parent = propagate.extract(carrier)
        method = scope["method"]
        attributes: dict[str, Any] = {
            "http.request.method": method,
            "url.path": scope["path"],
            "url.scheme": scope.get("scheme", "http"),
            "http.route": scope["path"],
            "network.protocol.version": scope.get("http_version", "1.1"),
        }
        client = scope.get("client")
        if client:
            attributes["client.address"] = client[0]
        server = scope.get("server")
        if server:
            attributes["server.address"] = server[0]
            if server[1] is not None:
                attributes["server.port"] = server[1]
        if "user-agent" in carrier:
            attributes["user_agent.original"] = carrier["user-agent"]
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        with self.tracer.start_as_current_span(
            f"{method} {scope['path']}",
            context=parent,
            kind=SpanKind.SERVER,
            attributes=attributes,
        ) as span:
            token = _request.set(_Request(span, state))
            try:
                await super().__call__(scope, receive, send)
            finally:
                _request.reset(token)

    async def _identify(self, headers: Mapping[str, str]) -> Caller:
        caller = await super()._identify(headers)
        role = caller.identity.role
        trace.get_current_span().set_attribute(
            "treegate.role", "none" if role is None else role.name.lower()
        )
        return caller

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        span = trace.get_current_span()
        state = scope.get("state", {})
        outcome = outcome_of(state, status)
        span.set_attribute("http.response.status_code", status)
        span.set_attribute("treegate.outcome", outcome)
        request_id = state.get("request_id")
        if request_id:
            span.set_attribute("treegate.request_id", request_id)
        name = state.get(OPERATION_KEY)
        if name:
            span.set_attribute("graphql.operation.name", name)
        kind = state.get(OPERATION_TYPE_KEY)
        if kind is None and scope["method"] == "GET" and status in (200, 304) and name:
            kind = "query"  # answered from the shared GET cache: GET runs queries only
        if kind is not None:
            span.set_attribute("graphql.operation.type", kind)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR, f"{status} {outcome}"))
        super().observe(scope, status, seconds)

    async def _operation(
        self,
        params: Params,
        media: str,
        identity: Identity,
        request_id: str,
        get: bool,
        state: dict[str, Any],
        primary: bool = False,
    ) -> Outcome:
        token = _operation.set(state)
        try:
            request = _request.get(None)
            if request is None or state is request.state:
                return await super()._operation(
                    params, media, identity, request_id, get, state, primary
                )
            # One operation of a batch: a span of its own holds its children.
            with self.tracer.start_as_current_span("graphql.operation") as span:
                try:
                    return await super()._operation(
                        params, media, identity, request_id, get, state, primary
                    )
                finally:
                    _describe(span, state)
                    span.set_attribute("treegate.outcome", state.get(OUTCOME_KEY) or "error")
        finally:
            _operation.reset(token)

    def _check_document(self, source: str) -> DocumentNode | list[GraphQLError]:
        with self.tracer.start_as_current_span("graphql.parse_validate") as span:
            checked = super()._check_document(source)
            if isinstance(checked, list):
                span.set_attribute("graphql.errors", len(checked))
            return checked

    async def _execute(
        self,
        params: Params,
        identity: Identity,
        request_id: str,
        read_engine: Any = None,
        caches: Caches | None = None,
    ) -> tuple[ExecutionResult, list[GraphQLError]]:
        with self.tracer.start_as_current_span("graphql.execute") as span:
            _describe(span, _operation.get({}))
            span.set_attribute("treegate.read_replica", read_engine is not None)
            result, errors = await super()._execute(
                params, identity, request_id, read_engine, caches
            )
            if errors:
                span.set_attribute("graphql.errors", len(errors))
            return result, errors


def _describe(span: Span, state: Mapping[str, Any]) -> None:
    """The operation's type and name, as the endpoint recorded them in its state once it found
    the operation in a valid document (nothing before)."""
    kind = state.get(OPERATION_TYPE_KEY)
    if kind is None:
        return
    span.set_attribute("graphql.operation.type", kind)
    name = state.get(OPERATION_KEY)
    if name is not None:
        span.set_attribute("graphql.operation.name", name)
