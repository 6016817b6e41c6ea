"""The GraphQL endpoint: Strawberry's ASGI view with Treegate's per-request context."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.http import GraphQLHTTPResponse, process_result
from strawberry.types import ExecutionResult

from resolvers.context import Context, Limits
from schema.errors import classify

_CONTEXT_KEY = "treegate_context"


class GraphQLView(GraphQL[Context, None]):
    """Opens the request's context (connection, loaders) and always closes it afterwards."""

    def __init__(self, schema: Any, engine: AsyncEngine, limits: Limits, graphiql: bool) -> None:
        super().__init__(schema, graphql_ide="graphiql" if graphiql else None)
        self.engine = engine
        self.limits = limits

    async def get_context(
        self, request: Request | WebSocket, response: Response | WebSocket
    ) -> Context:
        state = request.scope.setdefault("state", {})
        context = Context.create(self.engine, self.limits, state.get("request_id", "-"))
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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            context = scope.get("state", {}).pop(_CONTEXT_KEY, None)
            if context is not None:
                await context.close()
