"""The Starlette application factory."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.http.ides import get_graphql_ide_html

from db.engine import breaker, create_engine, probe_engine
from db.faults import RETRY_AFTER_S, fault_reason
from db.migrate import schema_status
from db.notify import WriteListener, listener_params
from db.replicas import ReadRouter
from gql import dashboard, logs
from gql.cors import CorsPolicy
from gql.fast_lane import CorsApp, TreegateApp
from gql.graphiql import localize, static_mount, with_example_query
from gql.http import GraphQLEndpoint
from gql.middleware import RequestIdMiddleware
from gql.persisted import PersistedQueries
from gql.rate_limits import RateLimiter, SharedBuckets
from gql.settings import Settings
from resolvers.caches import Caches, SharedCache
from resolvers.context import utc_now
from resolvers.maintenance import Pruner
from resolvers.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from resolvers.metrics import Metrics
from schema.build import build_schema

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

    from gql.tracing import Tracing

logger = logging.getLogger("treegate")


class State(TypedDict):
    engine: AsyncEngine
    settings: Settings


LISTEN_WAIT_S = 1.0
"""At start, the longest the server waits for its listener of other processes' writes."""

GC_THRESHOLDS = (10_000, 20, 100)
"""Python's collector thresholds for a serving process (CPython's defaults: 700, 10, 10)."""

_gc_settled = False


def settle_garbage_collector() -> None:
    """Once per process, when it starts serving: keep the collector off the tail latency.

    A served request allocates a few thousand short-lived objects, so with CPython's default
    thresholds the youngest generation is collected every few requests and a full collection,
    which walks every object the process holds (the schema, the parsed documents, SQLAlchemy's
    tables), runs every few hundred: measured, those pauses set the 99th percentile (Q2's p99
    fell from 45-140 ms to 25-40 ms with these settings, throughput rose a fifth). Objects
    alive after start-up are frozen out of the collector's sight (`gc.freeze`, as CPython's
    documentation advises for pre-fork servers), and collections are made rarer. Reference
    counting still frees everything that has no cycle at once.
    """
    global _gc_settled
    if _gc_settled:
        return
    _gc_settled = True
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def create_app(
    settings: Settings | None = None, *, tracer_provider: TracerProvider | None = None
) -> TreegateApp:
    """Build the ASGI app; settings come from the environment unless given.

    Tracing (`gql.tracing`) is on when the settings and the OTEL_* variables say so, or when a
    `tracer_provider` is given (tests); off, nothing of it is imported or installed."""
    settings = settings or Settings()
    engine = create_engine(settings.database_url, settings.pool)
    # /readyz asks the database on a connection of its own, so that a pool that is busy (every
    # connection lent) does not make a healthy process look unready.
    readiness_engine = probe_engine(settings.database_url, settings.pool)
    router = (
        ReadRouter(
            settings.database_url,
            settings.read_urls,
            settings.pool,
            interval=settings.replica_check_s,
            max_lag=settings.replica_max_lag_s,
            timeout=settings.ready_timeout,
        )
        if settings.read_urls
        else None
    )
    schema = build_schema()
    schema.fast_path_enabled = settings.compiled_reads
    schema.configure(
        settings.document_limits,
        introspection=settings.introspection_enabled,
        hide_suggestions=settings.env == "production",
    )
    graphiql = (
        localize(with_example_query(get_graphql_ide_html("graphiql")))
        if settings.graphiql_enabled
        else None
    )
    persisted = PersistedQueries(engine, settings.persisted_queries, settings.apq_cache_size)
    persisted.register_builtin(dashboard.DOCUMENTS.values())
    dashboard_page = dashboard.render()
    process_metrics = Metrics()
    shared_buckets = (
        SharedBuckets(settings.rate_limit_redis_url, process_metrics.rate_limit_store_failures.inc)
        if settings.rate_limit_redis_url
        else None
    )
    tracing: Tracing | None = None
    endpoint_kind: Callable[..., GraphQLEndpoint] = GraphQLEndpoint
    if tracer_provider is not None or settings.tracing_enabled():
        from gql import tracing as traced  # only when on: OpenTelemetry's modules are not free

        tracing = (
            traced.Tracing(traced.provider_from_environment(), owned=True)
            if tracer_provider is None
            else traced.Tracing(tracer_provider, owned=False)
        )
        endpoint_kind = partial(traced.TracedEndpoint, tracing=tracing)
    endpoint = endpoint_kind(
        schema,
        engine,
        settings.request_limits,
        policy=settings.write_policy,
        anonymous=settings.anonymous,
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch,
        graphiql_html=None if graphiql is None else (lambda: graphiql),
        caches=Caches(
            counts=SharedCache(ttl=settings.count_cache_s),
            responses=SharedCache(ttl=settings.response_cache_s),
            metrics=process_metrics,
        ),
        cache_control=settings.cache_control,
        persisted=persisted,
        max_in_flight=settings.max_concurrent_requests,
        router=router,
        limiter=RateLimiter(settings.rate_limit_defaults, shared=shared_buckets),
    )

    pruner = Pruner(engine, settings.prune_interval_s, utc_now)
    caches = endpoint.caches

    def heard_write() -> None:
        caches.clear()
        if router is not None:
            # Answers computed again at once may come from a replica that has not replayed the
            # write yet: clear once more when any replica in rotation has (its lag is at most
            # the maximum), so that such an answer is not kept for the caches' whole TTL.
            asyncio.get_running_loop().call_later(settings.replica_max_lag_s, caches.clear)

    listener = (
        WriteListener(
            listener_params(engine),
            # With replicas, this process's own writes are heard too: the caches its reads from
            # replicas fill are cleared only so (see heard_write).
            caches.origin if router is None else None,
            heard_write,
            connect_timeout=settings.db_connect_timeout,
        )
        if engine.dialect.name == "postgresql" and caches.ttl > 0
        else None
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: TreegateApp) -> AsyncIterator[State]:
        settle_garbage_collector()
        if tracing is not None:
            traced_engines: list[Any] = [engine]
            if router is not None:
                traced_engines += [replica.engine for replica in router.replicas]
            tracing.start(traced_engines)
        pruner.start()
        if router is not None:
            router.start()
        caches.metrics.start()
        if listener is not None:
            listener.start()
            # Listen before serving, so that no write goes unheard while answers are cached
            # (bounded: a database that is down now is listened to once it is back).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(settings.db_connect_timeout, LISTEN_WAIT_S)):
                    await listener.wait_connected()
        try:
            yield {"engine": engine, "settings": settings}
        finally:
            if listener is not None:
                await listener.stop()
            await caches.metrics.stop()
            await pruner.stop()
            if router is not None:
                await router.stop()
            if shared_buckets is not None:
                await shared_buckets.close()
            # After the server stopped taking requests and the last one was answered.
            await engine.dispose()
            await readiness_engine.dispose()
            logger.info("database connections closed")
            if tracing is not None:
                tracing.stop()  # the process's patches taken back, the last spans exported
            logs.flush(logger)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def described(body: dict[str, object]) -> dict[str, object]:
        # Readiness is the primary's (with every replica out, queries read from the primary);
        # the replicas are detail.
        return body if router is None else body | {"replicas": router.describe()}

    async def readyz(_request: Request) -> Response:
        try:
            async with asyncio.timeout(settings.ready_timeout):
                async with readiness_engine.connect() as conn:
                    status = await schema_status(conn)
        except Exception as exc:  # any failure means "not ready", whatever the driver raised
            reason = fault_reason(exc)
            logger.warning("readiness check failed: %s", reason)
            return JSONResponse(
                described(
                    {"status": "unavailable", "database": engine.dialect.name, "reason": reason}
                ),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        if status.problem is not None:
            logger.warning("readiness check failed: the database %s", status.problem)
            return JSONResponse(
                described(
                    {
                        "status": "unavailable",
                        "database": engine.dialect.name,
                        "reason": status.reason,
                        "detail": f"the database {status.problem}",
                    }
                ),
                status_code=503,
                headers={"Retry-After": str(RETRY_AFTER_S)},
            )
        return JSONResponse(described({"status": "ready", "database": engine.dialect.name}))

    caches.metrics.watch(
        {"counts": caches.counts, "responses": caches.responses},
        engine.pool,
        breaker(engine),
        lambda: endpoint.in_flight,
        listener,
    )

    async def metrics(_request: Request) -> Response:
        return Response(caches.metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    async def dashboard_view(_request: Request) -> Response:
        return HTMLResponse(dashboard_page)

    async def index(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    # /graphql itself is answered by the endpoint, ahead of the router (gql/fast_lane.py).
    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard", dashboard_view, methods=["GET"]),
    ]
    if settings.graphiql_enabled:
        routes.append(static_mount())  # GraphiQL's scripts and styles, under /graphql/static/
    middleware = [Middleware(RequestIdMiddleware)]
    # CORS wraps the whole app, /graphql included, and only when origins are named: without
    # them the plain app serves, with no cost per request (gql/cors.py).
    origins = settings.cors_origin_list
    kind: Callable[..., TreegateApp] = (
        partial(CorsApp, cors=CorsPolicy.of(origins, settings.cors_allow_credentials))
        if origins
        else TreegateApp
    )
    app = kind(routes=routes, middleware=middleware, lifespan=lifespan, endpoint=endpoint)
    app.state.engine = engine
    app.state.schema = schema
    app.state.endpoint = endpoint
    app.state.pruner = pruner
    app.state.listener = listener
    app.state.router = router
    app.state.settings = settings
    app.state.tracing = tracing
    return app
