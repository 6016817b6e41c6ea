"""The application: /graphql answered first, ahead of Starlette's middleware and router.

For a compiled read, Starlette's layers (its error middleware, the request-id middleware, the
router) cost about as much as the read itself, each wrapping `send` once more. So requests for
/graphql go straight to `gql.http.GraphQLEndpoint`, which holds every rule of the endpoint
(media types, keys, limits, persisted queries, the compiled path first), sets and echoes the
request id, and answers its own failures. Everything else (probes, metrics, the dashboard,
GraphiQL's files, the lifespan) is Starlette's as usual.

With CORS on (`TREEGATE_CORS_ORIGINS`), `CorsApp` serves instead: the same app with the CORS
policy (`gql.cors`) around everything, /graphql included, since Starlette's middleware (its
`CORSMiddleware` too) never sees /graphql.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.types import Message, Receive, Scope, Send

from gql.cors import CorsPolicy, with_vary_origin
from gql.http import GraphQLEndpoint

PATH = "/graphql"


class TreegateApp(Starlette):
    def __init__(self, *args: Any, endpoint: GraphQLEndpoint, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            scope["app"] = self
            await self.endpoint(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


class CorsApp(TreegateApp):
    """`TreegateApp` with CORS on every path: preflights answered here (204), and every answer
    to a request from an allowed origin given its allow headers; every answer says
    `Vary: Origin`, since what it carries depends on the request's origin."""

    def __init__(self, *args: Any, cors: CorsPolicy, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cors = cors

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().__call__(scope, receive, send)
            return
        origin: str | None = None
        preflight = False
        for name, value in scope["headers"]:
            if name == b"origin" and origin is None:
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight = True
        allowed = None if origin is None else self.cors.allowed(origin)
        if preflight and origin is not None and scope["method"] == "OPTIONS":
            # A disallowed origin gets no allow headers: the browser blocks the request.
            headers = [] if allowed is None else self.cors.preflight_headers(allowed)
            # No Content-Length: a 204 has none (RFC 9110).
            headers = with_vary_origin(headers)
            await send({"type": "http.response.start", "status": 204, "headers": headers})
            await send({"type": "http.response.body", "body": b""})
            return
        extra = [] if allowed is None else self.cors.answer_headers(allowed)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*with_vary_origin(message.get("headers", [])), *extra]
            await send(message)

        await super().__call__(scope, receive, send_with_cors)
