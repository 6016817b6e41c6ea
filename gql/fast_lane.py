"""The application: /graphql answered first, ahead of Starlette's middleware and router.

For a compiled read, Starlette's layers (its error middleware, the request-id middleware, the
router) cost about as much as the read itself, each wrapping `send` once more. So requests for
/graphql go straight to `gql.http.GraphQLEndpoint`, which holds every rule of the endpoint
(media types, keys, limits, persisted queries, the compiled path first), sets and echoes the
request id, and answers its own failures. Everything else (probes, metrics, the dashboard,
GraphiQL's files, the lifespan) is Starlette's as usual.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.types import Receive, Scope, Send

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
