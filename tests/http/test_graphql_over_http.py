"""GraphQL over HTTP: media types, status codes and refusals, on the real app (both backends).

The official audit (tests/e2e/test_http_audit.py) covers the specification's list; these tests
pin Treegate's own choices and the cases the audit does not send.
"""

from __future__ import annotations

import httpx
import pytest

from gql.http import negotiate

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON_UTF8 = "application/json; charset=utf-8"
RESPONSE_UTF8 = f"{GRAPHQL_RESPONSE}; charset=utf-8"
COUNTS = {"query": "{ treeStateCounts { count } }"}


@pytest.mark.parametrize(
    ("accept", "media"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"application/json, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE};q=0.5, application/json", "application/json"),
        ("application/json;q=0, */*;q=0.1", "application/json"),
        ("text/html", None),
        (f"{GRAPHQL_RESPONSE};q=0", None),
    ],
)
def test_negotiation(accept: str | None, media: str | None) -> None:
    assert negotiate(accept) == media


async def test_both_media_types_answer_with_their_content_type(client: httpx.AsyncClient) -> None:
    legacy = await client.post("/graphql", json=COUNTS)
    modern = await client.post("/graphql", json=COUNTS, headers={"Accept": GRAPHQL_RESPONSE})
    assert legacy.headers["content-type"] == JSON_UTF8
    assert modern.headers["content-type"] == RESPONSE_UTF8
    assert legacy.json() == modern.json() == {"data": {"treeStateCounts": []}}


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        ("{ treeStateCounts { count }", None),  # does not parse
        ("{ nope }", None),  # does not validate
        ("query($id: UUID!) { messageTreeState(messageTreeId: $id) { lang } }", {"id": 7}),
    ],
    ids=["parse", "validation", "variables"],
)
async def test_request_errors_are_400_without_data_or_200_for_legacy_clients(
    client: httpx.AsyncClient, query: str, variables: dict[str, object] | None
) -> None:
    body = {"query": query, "variables": variables}
    modern = await client.post("/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE})
    legacy = await client.post("/graphql", json=body, headers={"Accept": "application/json"})
    assert modern.status_code == 400
    assert legacy.status_code == 200
    for response in (modern, legacy):
        assert "data" not in response.json()
        assert response.json()["errors"][0]["extensions"]["code"]


async def test_field_errors_keep_200_and_data(client: httpx.AsyncClient) -> None:
    # A resolver error (bad input inside execution) is not a request error.
    query = {"query": "{ messageTreeStates(first: 1000) { totalCount } __typename }"}
    response = await client.post("/graphql", json=query, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert "data" in response.json()


JSON_TYPE = {"Content-Type": "application/json"}
TYPENAME = b'{"query": "{ __typename }"}'


@pytest.mark.parametrize(
    ("content", "headers", "status", "code"),
    [
        (b"", {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
        (b"{not json", {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"query": 1}', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"variables": {}}', {"Content-Type": "application/json"}, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "variables": "x"}', JSON_TYPE, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "extensions": "x"}', JSON_TYPE, 400, "BAD_REQUEST"),
        (b'{"query": "{ __typename }", "extensions": [1]}', JSON_TYPE, 400, "BAD_REQUEST"),
        (TYPENAME, {}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (TYPENAME, {"Content-Type": "application/json; charset=latin-1"}, 415,
         "UNSUPPORTED_MEDIA_TYPE"),
        (TYPENAME, {**JSON_TYPE, "Accept": "text/html"}, 406, "NOT_ACCEPTABLE"),
    ],
)  # fmt: skip
async def test_requests_the_endpoint_refuses(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str], status: int, code: str
) -> None:
    response = await client.post("/graphql", content=content, headers=headers)
    assert response.status_code == status
    assert response.json()["errors"][0]["extensions"]["code"] == code


async def test_other_methods_get_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/graphql", json=COUNTS)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"


async def test_get_runs_queries_from_the_url(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={
            "query": "query Q($s: [State!]) { treeStateCounts(filter: {states: $s}) { count } }",
            "variables": '{"s": ["GROWING"]}',
            "operationName": "Q",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"data": {"treeStateCounts": []}}
    bad = await client.get("/graphql", params={"query": "{ __typename }", "variables": "{"})
    assert bad.status_code == 400


async def test_an_unknown_operation_name_is_a_request_error(client: httpx.AsyncClient) -> None:
    body = {"query": "query A { __typename } query B { __typename }", "operationName": "C"}
    response = await client.post("/graphql", json=body, headers={"Accept": GRAPHQL_RESPONSE})
    assert response.status_code == 400
    assert "Unknown operation named 'C'" in response.text
    chosen = await client.post("/graphql", json={**body, "operationName": "B"})
    assert chosen.json() == {"data": {"__typename": "Query"}}


async def test_an_unexpected_failure_outside_execution_is_masked(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: object) -> None:
        raise RuntimeError("connection to /var/run/postgresql failed: SELECT 1")

    monkeypatch.setattr("gql.http.identify", broken)
    with caplog.at_level("ERROR", logger="treegate.http"):
        response = await client.post("/graphql", json=COUNTS, headers={"X-Request-ID": "r-1"})
    assert response.status_code == 500
    assert response.json() == {
        "errors": [
            {
                "message": "Internal server error (request id r-1)",
                "extensions": {"code": "INTERNAL_SERVER_ERROR", "requestId": "r-1"},
            }
        ]
    }
    assert "r-1" in caplog.text
    assert "RuntimeError" in caplog.text
