"""A small helper to post GraphQL documents in tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from starlette.applications import Starlette

from gql.app import create_app
from gql.settings import Settings


@asynccontextmanager
async def serving(settings: Settings, **fields: Any) -> AsyncIterator[Starlette]:
    """An app built from `settings` (with `fields` changed), its lifespan running."""
    app = create_app(settings.model_copy(update=fields))
    async with app.router.lifespan_context(app):
        yield app


@asynccontextmanager
async def app_client(
    settings: Settings, **fields: Any
) -> AsyncIterator[tuple[Starlette, httpx.AsyncClient]]:
    """An app built from `settings` (with `fields` changed), its lifespan running, and a client."""
    async with serving(settings, **fields) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://treegate.test", timeout=30
        ) as client:
            yield app, client


@asynccontextmanager
async def client_for(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client on an app built from `settings`, its lifespan running."""
    async with app_client(settings) as (_app, client):
        yield client


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a document; return the JSON body (asserting the HTTP exchange itself worked)."""
    response = await client.post("/graphql", json={"query": query, "variables": variables or {}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def data(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    """POST a document that must succeed; return its `data`."""
    body = await gql(client, query, variables)
    assert "errors" not in body, body["errors"]
    result: dict[str, Any] = body["data"]
    return result


def error_codes(body: dict[str, Any]) -> list[str]:
    return [e.get("extensions", {}).get("code") for e in body.get("errors", [])]
