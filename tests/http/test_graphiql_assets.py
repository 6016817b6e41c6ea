"""GraphiQL loads only vendored files, served by the app, whose bytes match the SRI hashes."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from strawberry.http.ides import get_graphql_ide_html

from gql.app import create_app
from gql.graphiql import ASSETS, CACHE_CONTROL, CDN, STATIC_URL, GraphiQLTemplateError, localize
from gql.settings import Settings

# <script src=...> and <link href=...> with their integrity attribute, in either order.
TAG = re.compile(r"<(?:script|link)\b[^>]*>", re.DOTALL)
ATTRIBUTE = re.compile(r'\b(src|href|integrity)="([^"]*)"')


@pytest.fixture
async def graphiql(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'http.db'}"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            yield c


async def _graphiql_assets(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(URL, integrity) of every script and stylesheet the GraphiQL page loads."""
    page = await client.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assets = []
    for tag in TAG.findall(page.text):
        attributes = dict(ATTRIBUTE.findall(tag))
        url = attributes.get("src") or attributes.get("href")
        if url and not url.startswith("data:"):
            assets.append((url, attributes.get("integrity", "")))
    return assets


async def test_graphiql_loads_only_the_vendored_files(graphiql: httpx.AsyncClient) -> None:
    assets = await _graphiql_assets(graphiql)
    assert [url for url, _ in assets] == [f"{STATIC_URL}/{asset}" for asset in ASSETS]


async def test_vendored_files_match_the_integrity_hashes(graphiql: httpx.AsyncClient) -> None:
    for url, integrity in await _graphiql_assets(graphiql):
        response = await graphiql.get(url)
        assert response.status_code == 200, url
        assert response.headers["cache-control"] == CACHE_CONTROL
        kind = "text/css" if url.endswith(".css") else "text/javascript"
        assert response.headers["content-type"].startswith(kind), url
        digest = base64.b64encode(hashlib.sha384(response.content).digest()).decode()
        assert integrity == f"sha384-{digest}", url


async def test_revalidation_keeps_the_cache_control(graphiql: httpx.AsyncClient) -> None:
    url = f"{STATIC_URL}/{ASSETS[0]}"
    etag = (await graphiql.get(url)).headers["etag"]
    response = await graphiql.get(url, headers={"If-None-Match": etag})
    assert response.status_code == 304
    assert response.headers["cache-control"] == CACHE_CONTROL


async def test_licenses_are_served_beside_the_files(graphiql: httpx.AsyncClient) -> None:
    # NAME@VERSION: the first segment, or the first two for a scoped package.
    packages = {"/".join(asset.split("/")[: 2 if asset.startswith("@") else 1]) for asset in ASSETS}
    assert len(packages) == 5
    for package in packages:
        response = await graphiql.get(f"{STATIC_URL}/{package}/LICENSE")
        assert response.status_code == 200, package
        assert "MIT License" in response.text


async def test_no_static_files_without_graphiql(tmp_path: Path) -> None:
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path / 'http.db'}", graphiql=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://treegate.test") as c:
            assert (await c.get(f"{STATIC_URL}/{ASSETS[0]}")).status_code == 404


def test_a_template_without_an_expected_url_fails() -> None:
    template = get_graphql_ide_html("graphiql").replace("graphiql@3.8.3", "graphiql@9.9.9")
    with pytest.raises(GraphiQLTemplateError, match=r"graphiql@3\.8\.3/graphiql\.min\.css"):
        localize(template)


def test_a_template_with_another_external_file_fails() -> None:
    extra = '<script src="https://cdn.example/extra.js"></script></head>'
    template = get_graphql_ide_html("graphiql").replace("</head>", extra)
    with pytest.raises(GraphiQLTemplateError, match=r"https://cdn\.example/extra\.js"):
        localize(template)


def test_a_missing_vendored_file_fails(tmp_path: Path) -> None:
    with pytest.raises(GraphiQLTemplateError, match=r"vendor-graphiql\.sh"):
        localize(get_graphql_ide_html("graphiql"), static_dir=tmp_path)


def test_the_rewritten_page_names_no_cdn() -> None:
    html = localize(get_graphql_ide_html("graphiql"))
    assert CDN not in html
    assert html.count(STATIC_URL) == len(ASSETS)
