"""Persisted queries over GET and POST, automatic and allow-listed, and `treegate persisted`."""

from __future__ import annotations

import hashlib
import json
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from db import persisted
from gql.cli import app as cli_app
from gql.settings import Settings
from tests.graphql import client_for

COUNTS = "{ treeStateCounts { count } }"
GRAPHQL_RESPONSE = "application/graphql-response+json"


def digest(document: str) -> str:
    return hashlib.sha256(document.encode()).hexdigest()


def by_hash(document: str, **extra: Any) -> dict[str, Any]:
    return {
        "extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest(document)}},
        **extra,
    }


def serving(settings: Settings, **fields: Any) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return client_for(Settings(database_url=settings.database_url, **fields))


def codes(response: httpx.Response) -> list[str]:
    return [e["extensions"]["code"] for e in response.json().get("errors", [])]


def as_get(payload: dict[str, Any]) -> dict[str, str]:
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in payload.items()}


async def test_the_automatic_protocol_over_post_and_get(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with serving(settings, response_cache_s=60) as client:
        missing = await client.post("/graphql", json=by_hash(COUNTS))
        assert codes(missing) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert missing.json()["errors"][0]["message"] == "PersistedQueryNotFound"
        strict = await client.post(
            "/graphql", json=by_hash(COUNTS), headers={"Accept": GRAPHQL_RESPONSE}
        )
        assert strict.status_code == 400
        # A GET miss is not shared: after registration the same URL answers.
        get_missing = await client.get("/graphql", params=as_get(by_hash(COUNTS)))
        assert codes(get_missing) == ["PERSISTED_QUERY_NOT_FOUND"]

        registered = await client.post("/graphql", json=by_hash(COUNTS, query=COUNTS))
        assert registered.json() == {"data": {"treeStateCounts": []}}
        for answer in (
            await client.post("/graphql", json=by_hash(COUNTS)),
            await client.get("/graphql", params=as_get(by_hash(COUNTS))),
        ):
            assert answer.json() == {"data": {"treeStateCounts": []}}
        cached = await client.get("/graphql", params=as_get(by_hash(COUNTS)))
        assert cached.headers["etag"]


async def test_a_hash_that_does_not_match_is_refused(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with serving(settings) as client:
        wrong = by_hash("{ __typename }", query=COUNTS)
        response = await client.post("/graphql", json=wrong)
        assert codes(response) == ["PERSISTED_QUERY_HASH_MISMATCH"]
        # ... and nothing was learnt under that hash.
        after = await client.post("/graphql", json=by_hash("{ __typename }"))
        assert codes(after) == ["PERSISTED_QUERY_NOT_FOUND"]
        version = {"extensions": {"persistedQuery": {"version": 2, "sha256Hash": digest(COUNTS)}}}
        bad_version = await client.post("/graphql", json=version)
        assert codes(bad_version) == ["PERSISTED_QUERY_VERSION_NOT_SUPPORTED"]


async def test_the_store_is_bounded(settings: Settings, engine: AsyncEngine) -> None:
    documents = [f"query Q{i} {{ __typename }}" for i in range(3)]
    async with serving(settings, apq_cache_size=2) as client:
        for document in documents:
            await client.post("/graphql", json=by_hash(document, query=document))
        oldest = await client.post("/graphql", json=by_hash(documents[0]))
        newest = await client.post("/graphql", json=by_hash(documents[2]))
    assert codes(oldest) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert newest.json() == {"data": {"__typename": "Query"}}


async def test_the_allow_list_runs_registered_documents_only(
    settings: Settings, engine: AsyncEngine
) -> None:
    async with engine.begin() as conn:
        await persisted.add(conn, COUNTS, "counts", datetime.now(UTC))
    async with serving(settings, persisted_queries="allowlist") as client:
        named = await client.post("/graphql", json=by_hash(COUNTS))
        whole = await client.post("/graphql", json={"query": COUNTS})
        assert named.json() == whole.json() == {"data": {"treeStateCounts": []}}
        other = "{ treeStateCounts { state count } }"
        refused = await client.post("/graphql", json={"query": other})
        assert codes(refused) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        learning = await client.post("/graphql", json=by_hash(other, query=other))
        assert codes(learning) == ["PERSISTED_QUERY_NOT_ALLOWED"]
        assert codes(await client.post("/graphql", json=by_hash(other))) == [
            "PERSISTED_QUERY_NOT_FOUND"
        ]
        get = await client.get("/graphql", params=as_get(by_hash(COUNTS)))
        assert get.json() == {"data": {"treeStateCounts": []}}


def test_persisted_add_and_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TREEGATE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    runner = CliRunner()
    assert runner.invoke(cli_app, ["migrate"]).exit_code == 0
    good = tmp_path / "counts.graphql"
    good.write_text("query Counts " + COUNTS)
    added = runner.invoke(cli_app, ["persisted", "add", str(good)])
    assert added.exit_code == 0, added.output
    assert digest(good.read_text()) in added.output
    assert "added" in added.output
    again = runner.invoke(cli_app, ["persisted", "add", str(good)])
    assert "already registered" in again.output
    listed = runner.invoke(cli_app, ["persisted", "list"])
    assert digest(good.read_text()) in listed.output
    assert "Counts" in listed.output
    invalid = tmp_path / "bad.graphql"
    invalid.write_text("{ nope }")
    refused = runner.invoke(cli_app, ["persisted", "add", str(invalid)])
    assert refused.exit_code != 0
    assert "nope" in refused.output
    assert "bad.graphql" not in runner.invoke(cli_app, ["persisted", "list"]).output
