"""The GraphQL endpoint: Strawberry's ASGI view with Treegate's per-request context."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from domain.outcomes import Identity
from domain.transitions import Role
from gql.auth import InvalidKey, identify
from gql.graphiql import localize
from resolvers.context import Context, Limits, WritePolicy
from schema.errors import classify

_CONTEXT_KEY = "treegate_context"
_IDENTITY_KEY = "treegate_identity"


UNKNOWN_KEY = "the API key is unknown or revoked"
KEY_NEEDED = (
    "this server needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
)


async def _unauthenticated(scope: Scope, receive: Receive, send: Send, message: str) -> None:
    body = {
        "data": None,
        "errors": [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}],
    }
    response = JSONResponse(body, status_code=401, headers={"WWW-Authenticate": "Bearer"})
    await response(scope, receive, send)


class GraphQLView(GraphQL[Context, None]):
    """Opens the request's context (connection, loaders) and always closes it afterwards.

    GraphiQL, when on, is Strawberry's page loading the vendored assets (gql/graphiql.py) instead of
    a CDN; it is rendered once, here, so a template that no longer fits fails at startup.
    """

    def __init__(
        self,
        schema: Any,
        engine: AsyncEngine,
        limits: Limits,
        *,
        graphiql: bool,
        policy: WritePolicy,
        anonymous: Role | None,
    ) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self.engine = engine
        self.limits = limits
        self.policy = policy
        self.anonymous = anonymous
        self._graphiql_html = localize(super().graphql_ide_html) if graphiql else ""

    def encode_json(self, data: object) -> bytes:
        # orjson: several times faster than json.dumps, and the same bytes as the compiled lane.
        return orjson.dumps(data)

    @property
    def graphql_ide_html(self) -> str:
        return self._graphiql_html

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.setdefault("state", {})
        context = Context.create(
            self.engine,
            self.limits,
            state.get("request_id", "-"),
            # Never a default role: a request that was not identified gets the anonymous one.
            identity=state.get(_IDENTITY_KEY) or Identity(None, self.anonymous),
            policy=self.policy,
        )
        context.extras["request"] = request
        context.extras["response"] = response
        state[_CONTEXT_KEY] = context
        return context

    async def process_result(
        self, request: Request, result: ExecutionResult
    ) -> GraphQLHTTPResponse:
        # Errors raised before execution (syntax errors) never reach the schema's
        # extensions: give them their code here. `classify` leaves coded errors alone.
        if result.errors:
            request_id = request.scope.get("state", {}).get("request_id", "-")
            result.errors = [classify(error, request_id) for error in result.errors]
        return process_result(result)

    def _asks_for_ide(self, scope: Scope) -> bool:
        return self.should_render_graphql_ide(self.request_adapter_class(Request(scope)))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            try:
                identity = await identify(self.engine, Headers(scope=scope), self.anonymous)
            except InvalidKey:
                await _unauthenticated(scope, receive, send, UNKNOWN_KEY)
                return
            # Every query needs the reader role: a caller without it (anonymous in production)
            # is answered before anything runs. Only the GraphiQL page itself (or its 404)
            # is served without a key; its requests then carry one.
            if not identity.allows(Role.READER) and not self._asks_for_ide(scope):
                await _unauthenticated(scope, receive, send, KEY_NEEDED)
                return
            scope.setdefault("state", {})[_IDENTITY_KEY] = identity
        try:
            await super().__call__(scope, receive, send)
        finally:
            context = scope.get("state", {}).pop(_CONTEXT_KEY, None)
            if context is not None:
                await context.close()
