"""The compiled lane: POST /graphql for documents with a compiled plan, answered in pure ASGI.

A read the compiled path can serve needs none of Starlette's routing, Strawberry's HTTP view or
its execution: this middleware reads the JSON body, identifies the caller, runs the document's
plan (`schema.fast`) and writes the response itself. Everything else goes on to the app
untouched, the body replayed: other methods and paths, other content types, documents without a
plan, callers the app must turn away (unknown keys, no reader role), and any error while the plan
runs, whose proper answer the full path gives. It applies the endpoint's own rules (`gql.http`:
content negotiation, content type, body limit, parameters, document limits and validation), and
its response is the one the endpoint gives, byte for byte and header for header;
`tests/http/test_compiled_lane.py` checks it.
"""

from __future__ import annotations

import time
from typing import Any

import orjson
from graphql import DocumentNode
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.transitions import Role
from gql.auth import identify
from gql.http import (
    OPERATION_KEY,
    OUTCOME_KEY,
    HttpError,
    content_type,
    is_json_content_type,
    negotiate,
    params_from,
)
from gql.middleware import request_id_for
from gql.persisted import PersistedQueryError

MAX_BODY = 64 * 1024
"""Bodies up to this size are read here; larger ones (never a compiled read) go on unread."""


class CompiledLane:
    def __init__(self, app: ASGIApp, *, endpoint: Any) -> None:
        self.app = app
        self.endpoint = endpoint  # gql.http.GraphQLEndpoint: engine, limits, policy, anonymous
        self.schema = endpoint.schema

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope["path"] != "/graphql"
            or not self.schema.fast_path_enabled
        ):
            await self.app(scope, receive, send)
            return
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            headers.setdefault(name, value)  # the first of repeated headers, as Starlette
        length = headers.get(b"content-length")
        if (
            not is_json_content_type(headers.get(b"content-type", b"").decode("latin-1"))
            or length is None
            or not length.isdigit()
            or int(length) > min(MAX_BODY, self.endpoint.max_body_bytes)
        ):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        body, receive = await _read_body(receive)
        if await self._answer(scope, headers, body, send):
            self.endpoint.observe(scope, 200, time.perf_counter() - started)
        else:
            await self.app(scope, receive, send)

    async def _answer(
        self, scope: Scope, headers: dict[bytes, bytes], body: bytes, send: Send
    ) -> bool:
        """Answer the request through its plan; False (nothing sent) if the app must."""
        media = negotiate(headers.get(b"accept", b"").decode("latin-1") or None)
        if media is None:
            return False
        try:
            params = params_from(orjson.loads(body))
        except (orjson.JSONDecodeError, HttpError):
            return False
        if params.extensions:
            return False  # persisted-query hashes and the like: the endpoint resolves them
        persisted = self.endpoint.persisted
        if persisted is not None and persisted.mode == "allowlist":
            try:
                await persisted.document({"query": params.query})
            except PersistedQueryError:
                return False  # the endpoint refuses it
        if not isinstance(self.schema.check_document(params.query), DocumentNode):
            return False
        plan = self.schema.fast_path.plan(params.query)
        if plan is None or params.operation_name not in (None, plan.operation_name):
            return False
        endpoint = self.endpoint
        try:
            identity = await identify(
                endpoint.engine,
                {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()},
                endpoint.anonymous,
            )
        except Exception:  # InvalidKey, or the database failing: the endpoint answers
            return False
        if not identity.allows(Role.READER):
            return False
        request_id = request_id_for(headers.get(b"x-request-id", b""))
        scope.setdefault("state", {})["request_id"] = request_id
        context = endpoint.context(request_id, identity)
        try:
            data = await self.schema.fast_path.run(plan, context, params.variables)
        except Exception:  # the full path answers, errors included
            return False
        finally:
            await context.close()
        response = orjson.dumps({"data": data})
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-length", str(len(response)).encode()),
                    (b"content-type", content_type(media)),
                    (b"x-request-id", request_id.encode("latin-1")),
                ],
            }
        )
        await send({"type": "http.response.body", "body": response})
        state = scope.setdefault("state", {})
        state[OPERATION_KEY] = params.operation_name or plan.operation_name
        state[OUTCOME_KEY] = "ok"
        return True


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body, and a `receive` that gives it again before what comes after."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            pending: list[Message] = [message]
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            pending = []
            break
    body = b"".join(chunks)
    replay: list[Message] = [{"type": "http.request", "body": body, "more_body": False}, *pending]

    async def replaying() -> Message:
        if replay:
            return replay.pop(0)
        return await receive()

    return body, replaying
