"""A short way to the GraphQL endpoint, past Starlette's router and exception middleware.

For a compiled read those layers cost about as much as the read itself (bench Q2), so requests
for /graphql go straight to `gql.http.GraphQLEndpoint`, which holds every rule of the endpoint
(media types, keys, limits, persisted queries, the compiled path first). It sits after the
request-id middleware, so the id is set and echoed as for any other route.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from gql.http import GraphQLEndpoint

PATH = "/graphql"


class GraphQLRoute:
    def __init__(self, app: ASGIApp, *, endpoint: GraphQLEndpoint) -> None:
        self.app = app
        self.endpoint = endpoint

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PATH:
            await self.endpoint(scope, receive, send)
        else:
            await self.app(scope, receive, send)
