"""The Starlette application factory."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import TypedDict

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from db.engine import create_engine
from gql.fast_lane import CompiledLane
from gql.graphiql import static_mount
from gql.graphql_view import GraphQLView
from gql.middleware import RequestIdMiddleware
from gql.settings import Settings
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
    view = GraphQLView(
        schema,
        engine,
        Limits(max_page_size=settings.max_page_size, default_page_size=settings.default_page_size),
        graphiql=settings.graphiql_enabled,
        policy=settings.write_policy,
        anonymous=settings.anonymous,
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

    async def index(_request: Request) -> Response:
        return RedirectResponse("/graphql")

    routes: list[BaseRoute] = [
        Route("/", index, methods=["GET"]),
        Route("/graphql", view, methods=["GET", "POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
    if settings.graphiql_enabled:
        routes.append(static_mount())  # GraphiQL's scripts and styles, under /graphql/static/
    app = Starlette(
        routes=routes,
        middleware=[Middleware(CompiledLane, view=view), Middleware(RequestIdMiddleware)],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.schema = schema
    app.state.settings = settings
    return app
