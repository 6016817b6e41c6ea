"""Pure ASGI middleware, and the request id every answer carries."""

from __future__ import annotations

import itertools
import os
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_PROCESS = os.urandom(8).hex()
_SEQUENCE = itertools.count(1)


def new_request_id() -> str:
    """A new id, unique across processes: a random prefix per process and a counter.

    Cheaper than 16 random bytes per request (a system call each), and as unique."""
    return f"{_PROCESS}{next(_SEQUENCE):016x}"


def request_id_for(incoming: str) -> str:
    """The client's `X-Request-ID` if it is sane, else a new id."""
    if incoming and _VALID_ID.match(incoming):
        return incoming
    return new_request_id()


class RequestIdMiddleware:
    """Gives each request an id (the client's `X-Request-ID` if sane), echoed in the response.

    The id is in `scope["state"]["request_id"]`; errors are logged under it. /graphql sets and
    echoes its own (`gql.http.GraphQLEndpoint`), ahead of this middleware.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = scope.get("state", {}).get("request_id") or request_id_for(
            dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        )
        scope.setdefault("state", {})["request_id"] = request_id
        header = (b"x-request-id", request_id.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), header]
            await send(message)

        await self.app(scope, receive, send_with_id)
