"""The Starlette application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from strawberry.http.ides import get_graphql_ide_html

from db.engine import create_engine
from gql import dashboard
from gql.fast_lane import GraphQLRoute
from gql.graphiql import localize, static_mount
from gql.http import GraphQLEndpoint
from gql.middleware import RequestIdMiddleware
from gql.persisted import PersistedQueries
from gql.settings import Settings
from resolvers.caches import Caches, SharedCache
from resolvers.context import Limits
from schema.build import build_schema

logger = logging.getLogger("treegate")


class State(TypedDict):
    engine: AsyncEngine
    settings: Settings


def create_app(settings: Settings | None = None) -> Starlette:
    """Build the ASGI app; settings come from the environment unless given."""
    settings = settings or Settings()
    engine = create_engine(settings.database_url, settings.pool)
    schema = build_schema()
    schema.fast_path_enabled = settings.compiled_reads
    schema.configure(
        settings.document_limits,
        introspection=settings.introspection_enabled,
        hide_suggestions=settings.env == "production",
    )
    graphiql = localize(get_graphql_ide_html("graphiql")) if settings.graphiql_enabled else None
    persisted = PersistedQueries(engine, settings.persisted_queries, settings.apq_cache_size)
    persisted.register_builtin(dashboard.DOCUMENTS.values())
    dashboard_page = dashboard.render()
    endpoint = GraphQLEndpoint(
        schema,
        engine,
        Limits(max_page_size=settings.max_page_size, default_page_size=settings.default_page_size),
        policy=settings.write_policy,
        anonymous=settings.anonymous,
        max_body_bytes=settings.max_body_bytes,
        max_batch=settings.max_batch,
        graphiql_html=None if graphiql is None else (lambda: graphiql),
        caches=Caches(
            counts=SharedCache(ttl=settings.count_cache_s),
            responses=SharedCache(ttl=settings.response_cache_s),
        ),
        cache_control=settings.cache_control,
        persisted=persisted,
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[State]:
        try:
            yield {"engine": engine, "settings": settings}
        finally:
            await engine.dispose()

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        try:
            async with asyncio.timeout(settings.ready_timeout):
                async with engine.connect() as conn:
                    await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure means "not ready", whatever the driver raised
            logger.warning("readiness check failed: %s", type(exc).__name__)
            return JSONResponse(
                {"status": "unavailable", "database": engine.dialect.name},
                status_code=503,
                headers={"Retry-After": "5"},
            )
        return JSONResponse({"status": "ready", "database": engine.dialect.name})

    caches = endpoint.caches
    caches.metrics.watch({"counts": caches.counts, "responses": caches.responses}, engine.pool)

    async def metrics(_request: Request) -> Response:
        return Response(generate_latest(caches.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    async def dashboard_view(_request: Request) -> Response:
        return HTMLResponse(dashboard_page)

    async def index(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    # /graphql itself is answered by `GraphQLRoute`, ahead of the router (gql/fast_lane.py).
    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
        Route("/dashboard", dashboard_view, methods=["GET"]),
    ]
    if settings.graphiql_enabled:
        routes.append(static_mount())  # GraphiQL's scripts and styles, under /graphql/static/
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestIdMiddleware), Middleware(GraphQLRoute, endpoint=endpoint)],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.schema = schema
    app.state.endpoint = endpoint
    app.state.settings = settings
    return app
