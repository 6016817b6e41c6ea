"""The GraphQL endpoint, by the GraphQL-over-HTTP specification.

- Media types: `application/graphql-response+json` when the client's `Accept` prefers it,
  `application/json` for legacy clients (no `Accept`, `*/*`, `application/json`); 406 when it
  accepts neither. Bodies are UTF-8 (orjson).
- Status codes: a request the server cannot take is 4xx whatever the media type (bad JSON, bad
  parameters, a body over the size limit 413, a content type other than JSON 415, a mutation
  over GET 405 with `Allow: POST`). A document that fails to parse, breaks a limit, fails
  validation or whose variables do not coerce is 400 under `application/graphql-response+json`
  (with no `data` entry) and 200 under `application/json`, as the specification says.
- POST needs `Content-Type: application/json`: the content types a cross-site form may send
  (`text/plain`, `application/x-www-form-urlencoded`, `multipart/form-data`) are refused, so no
  other site can make a browser run a mutation (CSRF).
- GET runs queries from the URL (`query`, `operationName`, `variables` and `extensions` as JSON);
  a browser asking for HTML gets GraphiQL when it is on.
- 503 with `Retry-After` when the database cannot serve the request (`DATABASE_UNAVAILABLE`,
  `db.faults`) or the process already serves `max_in_flight` requests (`SERVER_OVERLOADED`,
  answered at once). A read whose pooled connection died under it is run again once.
- Before anything runs: the caller's key (401 for an unknown or revoked key, or for a caller
  without the reader role), the document limits (`schema.limits`), then validation, with
  introspection off and suggestions hidden in production.

Execution is the schema's (`schema.build.TreegateSchema`), compiled path first.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationType,
    get_operation_ast,
)
from starlette.types import Message, Receive, Scope, Send

from db.faults import RETRY_AFTER_S
from db.replicas import PRIMARY, ReadRouter
from domain.outcomes import Identity
from domain.transitions import Role
from gql.auth import KEY_HEADERS, Caller, InvalidKey, identify
from gql.middleware import request_id_for
from gql.persisted import PersistedQueries, PersistedQueryError
from gql.rate_limits import RATE_LIMITED, Rate, RateLimiter, caller_class, retry_after
from resolvers.caches import Caches, SharedCache
from resolvers.context import Context, Limits, WritePolicy
from schema.errors import DATABASE_UNAVAILABLE, GRAPHQL_VALIDATION_FAILED, classify
from schema.limits import DOCUMENT_LIMIT_CODES

logger = logging.getLogger("treegate.http")
access_log = logging.getLogger("treegate.access")

OPERATION_KEY = "treegate_operation"
OPERATION_TYPE_KEY = "treegate_operation_type"
OUTCOME_KEY = "treegate_outcome"
WROTE_KEY = "treegate_wrote"
"""Set (with read replicas) once a request ran a mutation: what follows reads the primary."""
BODY_TOO_LARGE = "BODY_TOO_LARGE"
BATCH_LIMIT = "BATCH_LIMIT_EXCEEDED"
LIMIT_CODES = DOCUMENT_LIMIT_CODES | {BODY_TOO_LARGE, BATCH_LIMIT}
"""Codes of the refusals counted as limit rejections in the metrics."""

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
BAD_REQUEST = "BAD_REQUEST"
SERVER_OVERLOADED = "SERVER_OVERLOADED"
BUSY = (
    "the server is serving as many requests as it may (TREEGATE_MAX_CONCURRENT_REQUESTS); "
    "retry in a moment"
)
UNKNOWN_KEY = "the API key is unknown or revoked"
KEY_NEEDED = (
    "this server needs an API key: send `Authorization: Bearer <key>` or `X-API-Key: <key>`"
)


def negotiate(accept: str | None) -> str | None:
    """The response media type for an `Accept` header; None if it accepts neither of ours.

    The highest quality wins; at equal quality `application/graphql-response+json`, the
    specification's own type, wins over `application/json`, which `*/*` and `application/*`
    mean (legacy clients understand it).
    """
    if not accept:
        return JSON
    best: tuple[float, int, str] | None = None
    for part in accept.split(","):
        media, _, parameters = part.strip().partition(";")
        media = media.strip().lower()
        quality = 1.0
        for parameter in parameters.split(";"):
            name, _, value = parameter.strip().partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE:
            candidate = (quality, 2, GRAPHQL_RESPONSE)
        elif media in (JSON, "application/*", "*/*"):
            candidate = (quality, 1, JSON)
        else:
            continue
        if best is None or candidate[:2] > best[:2]:
            best = candidate
    return None if best is None else best[2]


def header_map(scope: Scope) -> dict[str, str]:
    """The request's headers by (lower-case) name, each read once; a repeated header counts
    by its first value, as Starlette's `Headers.get` reads it."""
    found: dict[str, str] = {}
    for name, value in scope["headers"]:
        key = name.decode("latin-1")
        if key not in found:
            found[key] = value.decode("latin-1")
    return found


def content_type(media: str) -> bytes:
    return f"{media}; charset=utf-8".encode()


class HttpError(Exception):
    """A request the endpoint refuses before any GraphQL work, with its status and code."""

    def __init__(
        self, status: int, message: str, code: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = dict(headers or {})


@dataclass(frozen=True, slots=True)
class Params:
    query: str
    variables: dict[str, Any] | None
    operation_name: str | None
    extensions: dict[str, Any] | None


def params_from(payload: Any) -> Params:
    """The request parameters, checked for their types (400 otherwise)."""
    if not isinstance(payload, dict):
        raise HttpError(400, "the request must be a JSON object", BAD_REQUEST)
    query = payload.get("query")
    if query is None:
        raise HttpError(400, "the request has no `query`", BAD_REQUEST)
    if not isinstance(query, str):
        raise HttpError(400, "`query` must be a string", BAD_REQUEST)
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpError(400, "`variables` must be a map", BAD_REQUEST)
    operation_name = payload.get("operationName")
    if operation_name is not None and not isinstance(operation_name, str):
        raise HttpError(400, "`operationName` must be a string", BAD_REQUEST)
    extensions = payload.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpError(400, "`extensions` must be a map", BAD_REQUEST)
    return Params(query, variables, operation_name, extensions)


def params_from_query_string(query_string: bytes) -> dict[str, Any]:
    raw = dict(parse_qsl(query_string.decode("latin-1"), keep_blank_values=True))
    payload: dict[str, Any] = {k: v for k, v in raw.items() if k in ("query", "operationName")}
    for name in ("variables", "extensions"):
        if raw.get(name):
            try:
                payload[name] = orjson.loads(raw[name])
            except orjson.JSONDecodeError:
                raise HttpError(400, f"`{name}` is not valid JSON", BAD_REQUEST) from None
    return payload


async def read_body(receive: Receive, headers: Mapping[str, str], limit: int) -> bytes:
    """The request body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = headers.get("content-length")
    too_large = HttpError(
        413, f"the request body exceeds {limit} bytes (TREEGATE_MAX_BODY_BYTES)", BODY_TOO_LARGE
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise HttpError(400, "the client went away", BAD_REQUEST)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def is_json_content_type(value: str | None) -> bool:
    if not value:
        return False
    media, _, parameters = value.partition(";")
    if media.strip().lower() != JSON:
        return False
    for parameter in parameters.split(";"):
        name, _, charset = parameter.strip().partition("=")
        if name.strip().lower() == "charset" and charset.strip().strip('"').lower() not in (
            "utf-8",
            "utf8",
        ):
            return False
    return True


@dataclass(slots=True)
class Outcome:
    status: int
    body: Any
    headers: dict[str, str]


class GraphQLEndpoint:
    """The ASGI application serving /graphql (see the module's docstring)."""

    def __init__(
        self,
        schema: Any,
        engine: Any,
        limits: Limits,
        *,
        policy: WritePolicy,
        anonymous: Role | None,
        max_body_bytes: int,
        max_batch: int,
        graphiql_html: Callable[[], str] | None,
        caches: Caches | None = None,
        cache_control: str = "no-cache",
        persisted: PersistedQueries | None = None,
        max_in_flight: int = 256,
        router: ReadRouter | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.schema = schema  # schema.build.TreegateSchema
        self.engine = engine
        self.limits = limits
        self.policy = policy
        self.anonymous = anonymous
        self.max_body_bytes = max_body_bytes
        self.max_batch = max_batch
        self.graphiql_html = graphiql_html
        self.caches = caches or Caches()
        self.cache_control = cache_control
        self.persisted = persisted
        self.max_in_flight = max_in_flight
        self.in_flight = 0
        self.router = router
        """Read replicas (`db.replicas`); None: every request reads from the primary."""
        self.limiter = RateLimiter({}) if limiter is None else limiter
        self.vary = VARY
        self.primary_caches = self.caches
        if router is not None:
            self.vary = f"{VARY}, {READ_HEADER_NAME}"
            # Reads that must see the latest writes (mutations, and queries sent with the
            # read header) share no count with replica reads, nor with each other (a count
            # computed on the primary by another request may be older than this caller's
            # write through another process); a write still clears the shared answers.
            self.primary_caches = Caches(
                counts=SharedCache(ttl=0),
                responses=self.caches.responses,
                metrics=self.caches.metrics,
                origin=self.caches.origin,  # one process in write notifications (db.notify)
            )
            self.caches.metrics.watch_replicas(lambda: router.replicas)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = header_map(scope)
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        request_id = state.get("request_id") or request_id_for(headers.get("x-request-id", ""))
        state["request_id"] = request_id
        echo = (b"x-request-id", request_id.encode("latin-1"))
        status = 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"].append(echo)
            await send(message)

        if self.in_flight >= self.max_in_flight:
            # Beyond the limit a request would only queue for the pool and time out later:
            # it is told at once, before its body is read.
            self.caches.metrics.overloaded.inc()
            state[OUTCOME_KEY] = "overloaded"
            body = {"errors": [{"message": BUSY, "extensions": {"code": SERVER_OVERLOADED}}]}
            await self._send(observed, 503, body, {"Retry-After": str(RETRY_AFTER_S)}, JSON)
            self.observe(scope, status, time.perf_counter() - started)
            return
        self.in_flight += 1
        try:
            await self._serve(scope, receive, observed, headers, request_id)
        except Exception as exc:
            if status == 500:  # nothing was sent yet
                await self._failed(scope, observed, headers, exc)
            else:
                logger.exception("unexpected error after the answer began")
        finally:
            self.in_flight -= 1
            self.observe(scope, status, time.perf_counter() - started)

    async def _failed(
        self, scope: Scope, send: Send, headers: Mapping[str, str], exc: Exception
    ) -> None:
        """A failure outside execution (checking the key, looking up a persisted query): 503
        for a database fault; otherwise never a bare "Internal Server Error" but masked as any
        unexpected error is, and logged under the request id the client gets."""
        state = scope.setdefault("state", {})
        request_id = state.get("request_id", "-")
        error = classify(GraphQLError(str(exc), original_error=exc), request_id)
        media = negotiate(headers.get("accept")) or JSON
        fault = _fault_reason([error])
        if fault is None:
            await self._send(send, 500, {"errors": [error.formatted]}, {}, media)
            return
        state[OUTCOME_KEY] = "unavailable"
        self.caches.metrics.database_faults.labels(fault).inc()
        retry = {"Retry-After": str(RETRY_AFTER_S)}
        await self._send(send, 503, {"errors": [error.formatted]}, retry, media)

    def observe(self, scope: Scope, status: int, seconds: float) -> None:
        """Count the request, time it, and write its access log line."""
        state = scope.get("state", {})
        operation = self.caches.metrics.operation(state.get(OPERATION_KEY))
        outcome = outcome_of(state, status)
        self.caches.metrics.answered(operation, outcome, scope["method"], seconds)
        access_log.info(
            "request_id=%s method=%s operation=%s status=%d outcome=%s duration_ms=%.1f",
            state.get("request_id", "-"),
            scope["method"],
            operation,
            status,
            outcome,
            seconds * 1000,
        )

    async def _serve(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: Mapping[str, str],
        request_id: str,
    ) -> None:
        media = negotiate(headers.get("accept"))
        try:
            if scope["method"] not in ("GET", "POST"):
                raise HttpError(
                    405, "use GET or POST", "METHOD_NOT_ALLOWED", {"Allow": "GET, POST"}
                )
            if scope["method"] == "GET" and self._wants_graphiql(scope, headers):
                await self._send(send, 200, self.graphiql_html(), {}, "text/html")  # type: ignore[misc]
                return
            if media is None:
                raise HttpError(
                    406,
                    f"this endpoint answers {GRAPHQL_RESPONSE} or {JSON}",
                    "NOT_ACCEPTABLE",
                )
            caller = await self._identify(headers)
            identity = caller.identity
            rate = self.limiter.rate_for(identity.name, identity.role, caller.rate_limit)
            if rate is not None:
                await self._admit(scope, identity, rate)
            if scope["method"] == "GET":
                await self._conditional_get(scope, send, headers, media, identity, request_id)
                return
            outcome = await self._handle(scope, receive, headers, media, identity, request_id)
        except HttpError as error:
            body = {"errors": [{"message": error.message, "extensions": {"code": error.code}}]}
            outcome = Outcome(error.status, body, error.headers)
            self._count_rejection(error.code)
        await self._send(send, outcome.status, outcome.body, outcome.headers, media or JSON)

    async def _conditional_get(
        self,
        scope: Scope,
        send: Send,
        headers: Mapping[str, str],
        media: str,
        identity: Identity,
        request_id: str,
    ) -> None:
        """A GET query: answered from the shared response cache when the same URL was answered
        for the same role within the window, with a strong ETag over the body; a matching
        `If-None-Match` gets 304 and no body."""

        async def answer() -> Rendered:
            outcome = await self._handle(scope, _no_body, headers, media, identity, request_id)
            payload = orjson.dumps(outcome.body)
            extra = dict(outcome.headers)
            if (
                outcome.status == 200
                and isinstance(outcome.body, dict)
                and "errors" not in outcome.body
            ):
                extra["ETag"] = '"' + hashlib.blake2b(payload, digest_size=16).hexdigest() + '"'
                extra["Cache-Control"] = self.cache_control
            extra["Vary"] = self.vary
            state = scope.get("state", {})
            return Rendered(
                outcome.status, payload, extra, state.get(OPERATION_KEY), state.get(OUTCOME_KEY)
            )

        if self.router is not None and wants_primary(headers):
            # A read that must see the latest writes is never served a shared answer (which
            # may come from a replica, or be older than the caller's write elsewhere).
            rendered = await answer()
        else:
            key = (scope.get("query_string", b""), identity.role, media)
            rendered = await self.caches.responses.get(key, answer)
            if "ETag" not in rendered.headers:
                self.caches.responses.forget(key)  # errors are not shared beyond waiters
        state = scope.setdefault("state", {})
        state[OPERATION_KEY], state[OUTCOME_KEY] = rendered.operation, rendered.outcome
        etag = rendered.headers.get("ETag")
        if etag is not None and _matches(headers.get("if-none-match"), etag):
            self.caches.metrics.not_modified.inc()
            await self._send_bytes(send, 304, b"", rendered.headers, media, body_headers=False)
            return
        await self._send_bytes(send, rendered.status, rendered.payload, rendered.headers, media)

    def context(
        self,
        request_id: str,
        identity: Identity,
        read_engine: Any = None,
        caches: Caches | None = None,
    ) -> Context:
        """A new request's context: its connection (on `read_engine`, a replica, when given),
        loaders and identity, the shared caches (or `caches`)."""
        return Context.create(
            self.engine,
            self.limits,
            request_id,
            identity=identity,
            policy=self.policy,
            caches=caches or self.caches,
            read_engine=read_engine,
        )

    def _wants_graphiql(self, scope: Scope, headers: Mapping[str, str]) -> bool:
        if self.graphiql_html is None:
            return False
        query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
        return "query" not in query and "text/html" in headers.get("accept", "")

    async def _identify(self, headers: Mapping[str, str]) -> Caller:
        try:
            caller = await identify(self.engine, headers, self.anonymous)
        except InvalidKey:
            raise HttpError(
                401, UNKNOWN_KEY, "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"}
            ) from None
        if not caller.identity.allows(Role.READER):
            raise HttpError(401, KEY_NEEDED, "UNAUTHENTICATED", {"WWW-Authenticate": "Bearer"})
        return caller

    async def _admit(self, scope: Scope, identity: Identity, rate: Rate) -> None:
        """Take a token from the caller's bucket (its key's, or its address's without a key);
        429 with `Retry-After` when it has none (`gql.rate_limits`)."""
        if identity.name is not None:
            who, whose = ("key", identity.name), "this API key"
        else:
            client = scope.get("client")
            who, whose = ("address", client[0] if client else "-"), "this address"
        wait = await self.limiter.admit(who, rate)
        if not wait:
            return
        seconds = retry_after(wait)
        scope["state"][OUTCOME_KEY] = "rate_limited"
        self.caches.metrics.rate_limited(caller_class(identity.name, identity.role))
        raise HttpError(
            429,
            f"too many requests: {whose} may send {rate}; retry in {seconds} s",
            RATE_LIMITED,
            {"Retry-After": str(seconds)},
        )

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        headers: Mapping[str, str],
        media: str,
        identity: Identity,
        request_id: str,
    ) -> Outcome:
        get = scope["method"] == "GET"
        if get:
            payload: Any = params_from_query_string(scope.get("query_string", b""))
        else:
            if not is_json_content_type(headers.get("content-type")):
                raise HttpError(
                    415,
                    f"POST needs `Content-Type: {JSON}` (other types are refused: CSRF)",
                    "UNSUPPORTED_MEDIA_TYPE",
                )
            body = await read_body(receive, headers, self.max_body_bytes)
            if not body.strip():
                raise HttpError(400, "the request body is empty", BAD_REQUEST)
            try:
                payload = orjson.loads(body)
            except orjson.JSONDecodeError:
                raise HttpError(400, "the request body is not valid JSON", BAD_REQUEST) from None
        primary = self.router is not None and wants_primary(headers)
        if isinstance(payload, list):
            if self.max_batch <= 1:
                raise HttpError(
                    400,
                    "batched requests are off (TREEGATE_MAX_BATCH)",
                    BATCH_LIMIT,
                )
            if not 1 <= len(payload) <= self.max_batch:
                raise HttpError(
                    400,
                    f"a batch holds 1 to {self.max_batch} operations (TREEGATE_MAX_BATCH)",
                    BATCH_LIMIT,
                )
            results = []
            for operation in payload:
                done: dict[str, Any] = {}
                results.append(
                    await self._resolved(operation, media, identity, request_id, get, done, primary)
                )
                # Reads after a write in the same request are the primary's.
                primary = primary or WROTE_KEY in done
            return Outcome(200, [r.body for r in results], {})
        state = scope.setdefault("state", {})
        return await self._resolved(payload, media, identity, request_id, get, state, primary)

    async def _resolved(
        self,
        payload: Any,
        media: str,
        identity: Identity,
        request_id: str,
        get: bool,
        state: dict[str, Any],
        primary: bool = False,
    ) -> Outcome:
        """One operation, its document first resolved from a persisted-query hash if named so."""
        if isinstance(payload, dict) and self.persisted is not None:
            try:
                payload = await self.persisted.document(payload)
            except PersistedQueryError as error:
                state[OUTCOME_KEY] = "error"
                found = GraphQLError(error.message, extensions={"code": error.code})
                return self._request_error([found], media, request_id)
        return await self._operation(
            params_from(payload), media, identity, request_id, get, state, primary
        )

    async def _operation(
        self,
        params: Params,
        media: str,
        identity: Identity,
        request_id: str,
        get: bool,
        state: dict[str, Any],
        primary: bool = False,
    ) -> Outcome:
        state[OPERATION_KEY] = params.operation_name
        state[OUTCOME_KEY] = "error"
        checked = self._check_document(params.query)
        if isinstance(checked, list):
            return self._request_error(checked, media, request_id)
        document: DocumentNode = checked
        operation = get_operation_ast(document, params.operation_name)
        if operation is None:
            message = (
                f"Unknown operation named '{params.operation_name}'."
                if params.operation_name
                else "Must provide operation name if query contains multiple operations."
            )
            error = GraphQLError(message, extensions={"code": GRAPHQL_VALIDATION_FAILED})
            return self._request_error([error], media, request_id)
        if operation.name is not None:
            state[OPERATION_KEY] = operation.name.value
        state[OPERATION_TYPE_KEY] = operation.operation.value
        if get and operation.operation is not OperationType.QUERY:
            raise HttpError(
                405,
                f"a {operation.operation.value} must be sent with POST",
                "METHOD_NOT_ALLOWED",
                {"Allow": "POST"},
            )
        if operation.operation is not OperationType.QUERY:
            # A mutation, and every read it makes, on the primary.
            state[WROTE_KEY] = True
            caches = self.primary_caches
            result, errors = await self._execute(params, identity, request_id, caches=caches)
            fault = _fault_reason(errors)
        elif self.router is None:
            result, errors, fault = await self._read_primary(params, identity, request_id)
        else:
            result, errors, fault = await self._routed_read(params, identity, request_id, primary)
        if fault is not None:
            state[OUTCOME_KEY] = "unavailable"
            self.caches.metrics.database_faults.labels(fault).inc()
            failed = {"data": result.data, "errors": [e.formatted for e in errors]}
            return Outcome(503, failed, {"Retry-After": str(RETRY_AFTER_S)})
        if result.data is None and errors and all(e.path is None for e in errors):
            # Nothing ran (variables that do not coerce): a request error.
            return self._request_error(errors, media, request_id)
        body: dict[str, Any] = {"data": result.data}
        if errors:
            body["errors"] = [e.formatted for e in errors]
        else:
            state[OUTCOME_KEY] = "ok"
        return Outcome(200, body, {})

    def _check_document(self, source: str) -> DocumentNode | list[GraphQLError]:
        """Parsing, the document limits and validation (cached by source: `schema.build`)."""
        return self.schema.check_document(source)  # type: ignore[no-any-return]

    async def _read_primary(
        self,
        params: Params,
        identity: Identity,
        request_id: str,
        caches: Caches | None = None,
        counted: bool = False,
    ) -> tuple[ExecutionResult, list[GraphQLError], str | None]:
        """A query on the primary. A pooled connection that died under it (the database
        restarted, or the backend was terminated) made the pool drop its old connections; a
        read is safe to run again, once, on a fresh one. `counted`: in the reads by target
        (with read replicas)."""
        for last in (False, True):
            result, errors = await self._execute(params, identity, request_id, caches=caches)
            if counted:
                self.caches.metrics.read_on(PRIMARY)
            fault = _fault_reason(errors)
            if fault != "connection_lost" or last:
                break
        return result, errors, fault

    async def _routed_read(
        self, params: Params, identity: Identity, request_id: str, primary: bool
    ) -> tuple[ExecutionResult, list[GraphQLError], str | None]:
        """A query with read replicas configured: on the next replica in rotation, unless the
        caller asked for the primary or none is healthy. A replica whose connection fails under
        the read is taken out of rotation and the read runs again, once, on the primary: the
        client never sees the replica's failure."""
        assert self.router is not None
        metrics = self.caches.metrics
        replica = None if primary else self.router.pick()
        if replica is None:
            caches = self.primary_caches if primary else self.caches
            return await self._read_primary(params, identity, request_id, caches, counted=True)
        result, errors = await self._execute(
            params, identity, request_id, read_engine=replica.engine
        )
        metrics.read_on(replica.name)
        fault = _fault_reason(errors)
        if fault in REPLICA_RETRY_REASONS:
            self.router.read_failed(replica, fault)
            assert metrics.replica_retries is not None
            metrics.replica_retries.labels(replica.name).inc()
            result, errors = await self._execute(params, identity, request_id)
            metrics.read_on(PRIMARY)
            fault = _fault_reason(errors)
        return result, errors, fault

    async def _execute(
        self,
        params: Params,
        identity: Identity,
        request_id: str,
        read_engine: Any = None,
        caches: Caches | None = None,
    ) -> tuple[ExecutionResult, list[GraphQLError]]:
        context = self.context(request_id, identity, read_engine, caches)
        try:
            result = await self.schema.run(
                params.query, params.variables, context, params.operation_name
            )
        finally:
            await context.close()
        return result, [classify(e, request_id) for e in result.errors or ()]

    def _request_error(self, errors: list[GraphQLError], media: str, request_id: str) -> Outcome:
        status = 400 if media == GRAPHQL_RESPONSE else 200
        formatted = [classify(e, request_id).formatted for e in errors]
        for error in formatted:
            self._count_rejection(error["extensions"]["code"])
        return Outcome(status, {"errors": formatted}, {})

    def _count_rejection(self, code: str) -> None:
        if code in LIMIT_CODES:
            self.caches.metrics.rejections.labels(code).inc()

    async def _send(
        self, send: Send, status: int, body: Any, headers: Mapping[str, str], media: str
    ) -> None:
        payload = body.encode() if isinstance(body, str) else orjson.dumps(body)
        await self._send_bytes(send, status, payload, headers, media)

    async def _send_bytes(
        self,
        send: Send,
        status: int,
        payload: bytes,
        headers: Mapping[str, str],
        media: str,
        *,
        body_headers: bool = True,
    ) -> None:
        raw_headers = [
            *((k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()),
        ]
        if body_headers:
            raw_headers += [
                (b"content-type", content_type(media)),
                (b"content-length", str(len(payload)).encode()),
            ]
        await send({"type": "http.response.start", "status": status, "headers": raw_headers})
        await send({"type": "http.response.body", "body": payload})


VARY = ", ".join(("Accept", *KEY_HEADERS))
"""What a GET answer depends on besides its URL: the media type, and the caller's role (and,
with read replicas, the read header)."""

READ_HEADER_NAME = "X-Treegate-Read"
READ_HEADER = READ_HEADER_NAME.lower()
"""`X-Treegate-Read: primary` asks for a query to read from the primary (with read replicas):
a client that must see its own write. Other values, or none, read from a replica."""

REPLICA_RETRY_REASONS = frozenset(
    {"unreachable", "connection_lost", "overloaded", "serialization_failure", "deadlock"}
)
"""Faults of a read on a replica after which it runs again on the primary: the replica's
connection failed, or it cancelled the read for a conflict with recovery (a hot standby does
that with SQLSTATE 40001 or 40P01 when replay needs what the read holds)."""


def outcome_of(state: Mapping[str, Any], status: int) -> str:
    """A request's outcome, as metrics, the access log and traces name it: what the endpoint
    recorded, else by its status (a refusal before any GraphQL work)."""
    return state.get(OUTCOME_KEY) or ("ok" if status < 400 else "refused")


def wants_primary(headers: Mapping[str, str]) -> bool:
    return headers.get(READ_HEADER, "").strip().lower() == PRIMARY


@dataclass(frozen=True, slots=True)
class Rendered:
    status: int
    payload: bytes
    headers: dict[str, str]
    operation: str | None
    outcome: str | None


def _fault_reason(errors: list[GraphQLError]) -> str | None:
    """The reason of the first database fault among classified errors, if any."""
    for error in errors:
        extensions = error.extensions or {}
        if extensions.get("code") == DATABASE_UNAVAILABLE:
            return str(extensions.get("reason", "unavailable"))
    return None


def _matches(if_none_match: str | None, etag: str) -> bool:
    """Whether `If-None-Match` names `etag` (weak comparison, as RFC 9110 asks for it)."""
    if not if_none_match:
        return False
    if if_none_match.strip() == "*":
        return True
    tags = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in tags


async def _no_body() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}
