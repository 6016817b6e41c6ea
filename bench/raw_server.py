"""The ceiling: the benchmark's questions answered by hand, without GraphQL or an ORM.

Plain Starlette, an asyncpg pool and orjson, served by uvicorn on uvloop and httptools:

    python -m uvicorn bench.raw_server:create_app --factory --loop uvloop --http httptools

It answers POST /graphql for the benchmark's documents only (`bench/queries/*.graphql`,
recognised by their exact text) and must give the same JSON as Treegate, byte for byte:
compact separators, keys in selection order, enum values as GraphQL names, ISO 8601 dates,
UTF-8 (orjson's output, as Treegate's).

Each question runs the SELECTs Treegate runs for it (same tables, filters and order, one
statement for each of Treegate's), hand-written, on one pooled connection, selecting only the
columns the answer needs (a tree's messages, Q6: the tree's row, then its messages in creation
order, at most as many as Treegate reads, put in depth-first order here); reads run outside a
transaction and nothing pings the connection (asyncpg's reset query when a connection returns
to the pool is kept: it is the pool's default).
The mutations keep Treegate's semantics and statements: one transaction, a transaction-scoped
advisory lock per language for draws, the same candidate queries, a compare-and-set UPDATE, and
a log row whose sequence comes from the same counter row, locked until commit.

Settings come from the same environment variables as Treegate's, so both servers get the same
database, pool size, pool timeout, statement timeout, cap on growing trees and the most messages
read of one tree.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bench import documents

Json = Any
Handler = Callable[[Any, dict[str, Any], Request], Awaitable[Json]]
"""Answers one document on a pooled connection: (connection, variables, request) -> data."""


@dataclass(frozen=True, slots=True)
class Config:
    database_url: str
    pool_size: int
    pool_timeout: float
    statement_timeout_ms: int
    max_active_trees: int
    max_tree_messages: int = 1000

    @classmethod
    def from_env(cls) -> Config:
        env = os.environ
        return cls(
            database_url=env.get(
                "TREEGATE_DATABASE_URL", "postgresql://postgres@127.0.0.1/postgres"
            ),
            pool_size=int(env.get("TREEGATE_DB_POOL_SIZE", "10")),
            pool_timeout=float(env.get("TREEGATE_DB_POOL_TIMEOUT", "5.0")),
            statement_timeout_ms=int(env.get("TREEGATE_DB_STATEMENT_TIMEOUT_MS", "15000")),
            max_active_trees=int(env.get("TREEGATE_MAX_ACTIVE_TREES", "10")),
            max_tree_messages=int(env.get("TREEGATE_MAX_TREE_MESSAGES", "1000")),
        )


class Unauthorized(Exception):
    """No key, an unknown or revoked key, or one whose role may not write."""


class TreeTooLarge(Exception):
    """A tree of more messages than the server reads at once."""


# --- Reads ------------------------------------------------------------------------------------

TREE_COLUMNS = (
    "message_tree_id::text, goal_tree_size, max_depth, max_children_count, state, active, "
    "origin, won_prompt_lottery_date, lang"
)
PAGE_SQL = (
    f"SELECT {TREE_COLUMNS} FROM message_tree_state WHERE state = $1 "
    "ORDER BY message_tree_state.message_tree_id LIMIT $2"  # the uuid, not the text column
)
COUNT_SQL = "SELECT count(*) FROM message_tree_state WHERE state = $1"
TREE_SQL = f"SELECT {TREE_COLUMNS} FROM message_tree_state WHERE message_tree_id = $1::uuid"
ROOTS_SQL = (
    "SELECT id::text, payload -> 'payload' ->> 'text', lang FROM message WHERE id = ANY($1::uuid[])"
)
BY_STATE_SQL = "SELECT state, count(*) FROM message_tree_state GROUP BY state ORDER BY state"
BY_STATE_LANG_SQL = (
    "SELECT state, lang, count(*) FROM message_tree_state GROUP BY state, lang ORDER BY state, lang"
)
TREE_EXISTS_SQL = "SELECT 1 FROM message_tree_state WHERE message_tree_id = $1::uuid"
TREE_MESSAGES_SQL = (
    "SELECT id::text, parent_id::text, role, payload -> 'payload' ->> 'text', depth, rank, deleted "
    "FROM message WHERE message_tree_id = $1::uuid "
    "ORDER BY message.created_date, message.id LIMIT $2"  # the uuid, not the text column
)
PAGE_SIZE = 100
READY_FOR_EXPORT = "ready_for_export"


def _tree(row: Any) -> dict[str, Json]:
    return {
        "messageTreeId": row[0],
        "goalTreeSize": row[1],
        "maxDepth": row[2],
        "maxChildrenCount": row[3],
        "state": row[4].upper(),
        "active": row[5],
        "origin": row[6],
        "wonPromptLotteryDate": row[7],
        "lang": row[8],
    }


async def q1_page(conn: Any, _variables: dict[str, Any], _request: Request) -> Json:
    rows = await conn.fetch(PAGE_SQL, READY_FOR_EXPORT, PAGE_SIZE)
    total = await conn.fetchval(COUNT_SQL, READY_FOR_EXPORT)
    return {"messageTreeStates": {"nodes": [_tree(r) for r in rows], "totalCount": total}}


async def q2_tree(conn: Any, variables: dict[str, Any], _request: Request) -> Json:
    row = await conn.fetchrow(TREE_SQL, variables["id"])
    return {"messageTreeState": None if row is None else _tree(row)}


async def q3_counts(conn: Any, _variables: dict[str, Any], _request: Request) -> Json:
    by_state = await conn.fetch(BY_STATE_SQL)
    by_state_lang = await conn.fetch(BY_STATE_LANG_SQL)
    return {
        "byState": [{"state": r[0].upper(), "count": r[1]} for r in by_state],
        "byLangState": [
            {"lang": r[1], "state": r[0].upper(), "count": r[2]} for r in by_state_lang
        ],
    }


async def q4_page_root(conn: Any, _variables: dict[str, Any], _request: Request) -> Json:
    rows = await conn.fetch(PAGE_SQL, READY_FOR_EXPORT, PAGE_SIZE)
    roots = {
        r[0]: {"text": r[1], "lang": r[2]}
        for r in await conn.fetch(ROOTS_SQL, [r[0] for r in rows])
    }
    total = await conn.fetchval(COUNT_SQL, READY_FOR_EXPORT)
    nodes = []
    for row in rows:
        node = _tree(row)
        node["rootMessage"] = roots.get(row[0])
        nodes.append(node)
    return {"messageTreeStates": {"nodes": nodes, "totalCount": total}}


def _rank(row: Any) -> tuple[bool, int]:
    rank = row[5]
    return (rank is None, 0 if rank is None else rank)


def depth_first(tree_id: str, rows: list[Any]) -> list[dict[str, Json]]:
    """Rows of (id, parent_id, role, text, depth, rank, deleted) in creation order (then id),
    as `messages { id parentId role text depth rank }`: deleted messages hidden with the ones
    below them, the root first, depth-first, siblings by rank (unranked last; the sort is
    stable, so creation date and id break ties)."""
    children: dict[str | None, list[Any]] = {}
    root = None
    for row in rows:
        if row[6]:
            continue
        if row[0] == tree_id:
            root = row
        else:
            children.setdefault(row[1], []).append(row)
    found: list[dict[str, Json]] = []
    stack = [] if root is None else [root]
    while stack:
        row = stack.pop()
        found.append(
            {
                "id": row[0],
                "parentId": row[1],
                "role": row[2],
                "text": row[3],
                "depth": row[4],
                "rank": row[5],
            }
        )
        below = children.get(row[0])
        if below:
            below.sort(key=_rank)
            stack.extend(reversed(below))
    return found


def tree_messages_handler(most: int) -> Handler:
    async def q6_tree_messages(conn: Any, variables: dict[str, Any], _request: Request) -> Json:
        tree_id = str(uuid.UUID(variables["id"]))
        if await conn.fetchval(TREE_EXISTS_SQL, tree_id) is None:
            return {"messageTreeState": None}
        rows = await conn.fetch(TREE_MESSAGES_SQL, tree_id, most + 1)
        if len(rows) > most:
            raise TreeTooLarge(f"the tree {tree_id} has more than {most} messages")
        return {"messageTreeState": {"messages": depth_first(tree_id, rows)}}

    return q6_tree_messages


# --- Writes -----------------------------------------------------------------------------------

KEY_SQL = "SELECT name, role FROM treegate_api_key WHERE key_hash = $1 AND revoked_at IS NULL"
WRITER_ROLES = frozenset({"OPERATOR", "MODERATOR", "ADMIN"})
LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))"
GROWING_SQL = "SELECT count(*) FROM message_tree_state WHERE lang = $1 AND state = 'growing'"
CANDIDATES = (
    "FROM message_tree_state JOIN message ON message.id = message_tree_state.message_tree_id "
    'JOIN "user" ON "user".id = message.user_id '
)
CANDIDATE_WHERE = (
    "WHERE message_tree_state.lang = $1 AND message_tree_state.state = 'prompt_lottery_waiting' "
    'AND message.deleted IS NOT true AND message.review_result IS true AND "user".enabled IS true '
    'AND "user".deleted IS NOT true'
)
AUTHORS_SQL = (
    'SELECT "user".id::text, coalesce(max(user_stats.reply_ranked_1), 0) '
    + CANDIDATES
    + "LEFT OUTER JOIN user_stats "
    "ON user_stats.user_id = \"user\".id AND user_stats.time_frame = 'month' "
    + CANDIDATE_WHERE
    + ' GROUP BY "user".id'
)
PROMPTS_SQL = (
    "SELECT message_tree_state.message_tree_id::text "
    + CANDIDATES
    + CANDIDATE_WHERE
    + " AND message.user_id = $2::uuid"
)
MOVED_COLUMNS = "message_tree_id::text, state, active, won_prompt_lottery_date"
DRAW_CAS_SQL = (
    "UPDATE message_tree_state SET state = 'growing', active = true, "
    "won_prompt_lottery_date = coalesce(won_prompt_lottery_date, $2) "
    "WHERE message_tree_id = $1::uuid AND state = 'prompt_lottery_waiting' "
    f"RETURNING {MOVED_COLUMNS}"
)
ABORT_CAS_SQL = (
    "UPDATE message_tree_state SET state = 'aborted_low_grade', active = false "
    f"WHERE message_tree_id = $1::uuid AND state = 'growing' RETURNING {MOVED_COLUMNS}"
)
STATE_SQL = f"SELECT {MOVED_COLUMNS} FROM message_tree_state WHERE message_tree_id = $1::uuid"
# The counter's increment and the log row in one statement, as Treegate writes them (db/log.py).
LOG_SQL = (
    "WITH next_sequence AS (INSERT INTO treegate_counter (name, value) VALUES ('transition', 1) "
    "ON CONFLICT (name) DO UPDATE SET value = treegate_counter.value + 1 RETURNING value) "
    "INSERT INTO treegate_transition "
    "(sequence, message_tree_id, from_state, to_state, operation, actor, reason, at) "
    "SELECT value, $1::uuid, $2, $3, $4, $5, $6, $7 FROM next_sequence RETURNING sequence"
)
NO_CANDIDATES = "no more candidates (waiting prompts with an accepted root by an enabled author)"


def _presented_key(request: Request) -> str | None:
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return request.headers.get("x-api-key", "").strip() or None


async def _actor(conn: Any, request: Request) -> str:
    key = _presented_key(request)
    if key is None or len(key) > 200:
        raise Unauthorized("the benchmark's mutations need an operator key")
    row = await conn.fetchrow(KEY_SQL, hashlib.sha256(key.encode()).hexdigest())
    if row is None or row[1] not in WRITER_ROLES:
        raise Unauthorized("the API key is unknown, revoked or may not write")
    return str(row[0])


async def _log(
    conn: Any,
    tree_id: str,
    source: str,
    target: str,
    operation: str,
    actor: str,
    reason: str,
    at: datetime,
) -> int:
    return int(await conn.fetchval(LOG_SQL, tree_id, source, target, operation, actor, reason, at))


def _moved(row: Any) -> dict[str, Json]:
    return {
        "messageTreeId": row[0],
        "state": row[1].upper(),
        "active": row[2],
        "wonPromptLotteryDate": row[3],
    }


def _shortfall(drawn: int, asked: int, growing: int, cap: int, candidates_left: bool) -> str:
    if drawn == asked:
        return f"drew {drawn} of {asked} asked"
    if growing >= cap:
        why = f"the language has reached max_active_trees ({growing} of {cap} growing)"
    elif not candidates_left:
        why = NO_CANDIDATES
    else:
        why = "other callers moved the candidates first"
    return f"drew {drawn} of {asked} asked: {why}"


def draw_handler(cap: int, rng: random.Random) -> Handler:
    async def q5_draw(conn: Any, variables: dict[str, Any], request: Request) -> Json:
        lang = str(variables["lang"])
        asked = 1
        actor = await _actor(conn, request)
        drawn: list[dict[str, Json]] = []
        async with conn.transaction():
            await conn.execute(LOCK_SQL, f"treegate.lottery:{lang}")
            growing_before = growing = int(await conn.fetchval(GROWING_SQL, lang))
            candidates_left = True
            attempts = 0
            while len(drawn) < asked and growing < cap and attempts < 10 * asked:
                attempts += 1
                authors = sorted(await conn.fetch(AUTHORS_SQL, lang), key=lambda r: r[0])
                if not authors:
                    candidates_left = False
                    break
                weights = [max(int(r[1]), 0) + 1 for r in authors]
                author = rng.choices(authors, weights=weights, k=1)[0][0]
                prompts = sorted(r[0] for r in await conn.fetch(PROMPTS_SQL, lang, author))
                if not prompts:
                    continue
                tree_id = rng.choice(prompts)
                now = datetime.now(UTC)
                row = await conn.fetchrow(DRAW_CAS_SQL, tree_id, now)
                if row is None:
                    continue
                reason = f"drawn in the prompt lottery for {lang}"
                await _log(
                    conn,
                    tree_id,
                    "prompt_lottery_waiting",
                    "growing",
                    "drawPromptLottery",
                    actor,
                    reason,
                    now,
                )
                drawn.append(_moved(row))
                growing += 1
        message = _shortfall(len(drawn), asked, growing, cap, candidates_left)
        return {
            "drawPromptLottery": {
                "__typename": "LotteryDrawn",
                "lang": lang,
                "drawn": drawn,
                "growingBefore": growing_before,
                "growingAfter": growing,
                "maxActiveTrees": cap,
                "message": message,
            }
        }

    return q5_draw


def _rejected(row: Any, message: str) -> dict[str, Json]:
    return {
        "__typename": "TransitionRejected",
        "messageTreeId": row[0],
        "currentState": row[1].upper(),
        "requestedState": "ABORTED_LOW_GRADE",
        "reason": "STATE_CHANGED",
        "message": message,
    }


async def q5_abort(conn: Any, variables: dict[str, Any], request: Request) -> Json:
    """transitionTree(to: ABORTED_LOW_GRADE, expectedState: GROWING, reason: "bench")."""
    tree_id = str(uuid.UUID(variables["id"]))
    actor = await _actor(conn, request)
    result: dict[str, Json]
    async with conn.transaction():
        row = await conn.fetchrow(STATE_SQL, tree_id)
        if row is None:
            result = {
                "__typename": "TreeNotFound",
                "messageTreeId": tree_id,
                "message": f"no message tree {tree_id}",
            }
        elif row[1] != "growing":
            result = _rejected(row, f"the tree is {row[1].upper()}, not GROWING as expected")
        else:
            now = datetime.now(UTC)
            moved = await conn.fetchrow(ABORT_CAS_SQL, tree_id)
            if moved is None:
                current = await conn.fetchrow(STATE_SQL, tree_id)
                message = (
                    f"the tree moved from GROWING to {current[1].upper()} "
                    "while this request was deciding: nothing was changed"
                )
                result = _rejected(current, message)
            else:
                sequence = await _log(
                    conn,
                    tree_id,
                    "growing",
                    "aborted_low_grade",
                    "transitionTree",
                    actor,
                    "bench",
                    now,
                )
                result = {
                    "__typename": "TransitionApplied",
                    "tree": _moved(moved),
                    "transition": {
                        "sequence": str(sequence),
                        "messageTreeId": tree_id,
                        "fromState": "GROWING",
                        "toState": "ABORTED_LOW_GRADE",
                        "operation": "TRANSITION_TREE",
                        "actor": actor,
                        "reason": "bench",
                        "at": now,
                    },
                }
    return {"transitionTree": result}


# --- The application --------------------------------------------------------------------------


def _error(status: int, message: str) -> Response:
    body = {"data": None, "errors": [{"message": message}]}
    return Response(orjson.dumps(body), status_code=status, media_type="application/json")


def create_app(config: Config | None = None) -> Starlette:
    config = config or Config.from_env()
    handlers: dict[str, Handler] = {
        documents.load("Q1"): q1_page,
        documents.load("Q2"): q2_tree,
        documents.load("Q3"): q3_counts,
        documents.load("Q4"): q4_page_root,
        documents.load("Q6"): tree_messages_handler(config.max_tree_messages),
        documents.load("Q5_DRAW"): draw_handler(config.max_active_trees, random.Random()),
        documents.load("Q5_ABORT"): q5_abort,
    }
    pools: list[Any] = []

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(
            config.database_url,
            min_size=config.pool_size,
            max_size=config.pool_size,
            timeout=config.pool_timeout,
            server_settings={
                "application_name": "treegate-bench-raw",
                "statement_timeout": str(config.statement_timeout_ms),
            },
        )
        pools.append(pool)
        try:
            yield
        finally:
            await pool.close()

    async def graphql(request: Request) -> Response:
        try:
            payload = orjson.loads(await request.body())
            handler = handlers[payload["query"]]
            variables = payload.get("variables") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError):
            return _error(400, "the raw server answers the benchmark's documents only")
        try:
            async with pools[0].acquire(timeout=config.pool_timeout) as conn:
                data = await handler(conn, variables, request)
        except Unauthorized as exc:
            return _error(401, str(exc))
        except TreeTooLarge as exc:
            return _error(422, str(exc))
        return Response(orjson.dumps({"data": data}), media_type="application/json")

    async def healthz(_request: Request) -> Response:
        return Response(b'{"status":"ok"}', media_type="application/json")

    return Starlette(
        routes=[
            Route("/graphql", graphql, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
