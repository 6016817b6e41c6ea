"""Helpers of the mutation tests: documents, callers with API keys, trees and DB snapshots.

Expectations are computed from what a test inserted and from docs/design.md's table as
transcribed in `DESIGN_ROWS` below, never from `domain.transitions`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from db.tables import idempotency, message, message_tree_state, transition
from domain.states import State
from tests.factories import TreeSpec, add_tree, add_user, payload

S = State

# docs/design.md's transitionTree rows (from, to); every other pair is refused by transitionTree.
TRANSITION_TREE_ROWS: frozenset[tuple[State, State]] = frozenset(
    {
        (S.INITIAL_PROMPT_REVIEW, S.PROMPT_LOTTERY_WAITING),
        (S.INITIAL_PROMPT_REVIEW, S.ABORTED_LOW_GRADE),
        (S.GROWING, S.RANKING),
        (S.GROWING, S.ABORTED_LOW_GRADE),
        (S.RANKING, S.READY_FOR_SCORING),
        (S.READY_FOR_SCORING, S.READY_FOR_EXPORT),
        (S.READY_FOR_SCORING, S.SCORING_FAILED),
        (S.SCORING_FAILED, S.READY_FOR_SCORING),
        (S.SCORING_FAILED, S.RANKING),
        (S.BACKLOG_RANKING, S.RANKING),
        (S.BACKLOG_RANKING, S.ABORTED_LOW_GRADE),
    }
)
LOTTERY_ROW = (S.PROMPT_LOTTERY_WAITING, S.GROWING)
# Open-Assistant's TERMINAL_STATES (inactive), from docs/open-assistant.md.
INACTIVE = frozenset(
    {
        S.READY_FOR_EXPORT,
        S.SCORING_FAILED,
        S.ABORTED_LOW_GRADE,
        S.HALTED_BY_MODERATOR,
        S.BACKLOG_RANKING,
        S.PROMPT_LOTTERY_WAITING,
    }
)

RESULT_FIELDS = """
  __typename
  ... on TransitionApplied {
    tree { messageTreeId state active isTerminal wonPromptLotteryDate }
    transition { sequence messageTreeId fromState toState operation actor reason at }
  }
  ... on TransitionRejected { messageTreeId currentState requestedState reason message }
  ... on TreeNotFound { messageTreeId message }
"""
TRANSITION = (
    "mutation($input: TransitionTreeInput!) { result: transitionTree(input: $input) {"
    + RESULT_FIELDS
    + "} }"
)
HALT = (
    "mutation($input: HaltTreeInput!) { result: haltTree(input: $input) {" + RESULT_FIELDS + "} }"
)
RESUME = (
    "mutation($input: ResumeTreeInput!) { result: resumeTree(input: $input) {"
    + RESULT_FIELDS
    + "} }"
)
DRAW = """mutation($input: DrawPromptLotteryInput!) { result: drawPromptLottery(input: $input) {
  __typename
  ... on LotteryDrawn {
    lang growingBefore growingAfter maxActiveTrees message
    drawn { messageTreeId state active wonPromptLotteryDate }
  }
  ... on LotteryRejected { lang reason message }
} }"""
TREE_QUERY = """query($id: UUID!) { tree: messageTreeState(messageTreeId: $id) {
  messageTreeId state active wonPromptLotteryDate } }"""


def auth_headers(key: str | None, header: str = "bearer") -> dict[str, str]:
    if key is None:
        return {}
    if header == "bearer":
        return {"Authorization": f"Bearer {key}"}
    return {"X-API-Key": key}


async def post(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    *,
    key: str | None = None,
    header: str = "bearer",
) -> httpx.Response:
    return await client.post(
        "/graphql",
        json={"query": query, "variables": variables or {}},
        headers=auth_headers(key, header),
    )


async def body(
    client: httpx.AsyncClient,
    query: str,
    variables: dict[str, Any] | None = None,
    **auth: Any,
) -> dict[str, Any]:
    """The JSON body of a 200 answer."""
    response = await post(client, query, variables, **auth)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


async def mutate(
    client: httpx.AsyncClient, document: str, input: dict[str, Any], key: str, **auth: Any
) -> dict[str, Any]:
    """Run a mutation that must answer a result member; return it."""
    answer = await body(client, document, {"input": input}, key=key, **auth)
    assert "errors" not in answer, answer["errors"]
    result: dict[str, Any] = answer["data"]["result"]
    return result


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def now() -> datetime:
    return datetime.now(UTC)


# --- trees ---------------------------------------------------------------------------------


async def make_tree(
    engine: AsyncEngine,
    state: State,
    *,
    won: datetime | None = None,
    root_review: bool | None = True,
    accepted: int = 2,
    pending: int = 0,
    deleted: int = 0,
    deleted_pending: int = 0,
    goal: int = 3,
    lang: str = "en",
) -> uuid.UUID:
    """A tree in `state` whose root has `root_review`, with reply rows of each kind.

    With the defaults (root and 2 replies accepted, goal 3) every guard that reads messages
    holds: 3 accepted, non-deleted messages for a goal of 3, none awaiting review.
    """
    async with engine.begin() as conn:
        author = await add_user(conn)
        spec = TreeSpec(
            state=state,
            lang=lang,
            won_prompt_lottery_date=won,
            goal_tree_size=goal,
            review_result=root_review,
        )
        tree_id = await add_tree(conn, spec, user_id=author)
        rows: list[dict[str, Any]] = []
        kinds = (
            (True, accepted, False),
            (None, pending, False),
            (True, deleted, True),
            (None, deleted_pending, True),
        )
        for review, count, gone in kinds:
            rows += [
                {
                    "id": uuid.uuid4(),
                    "parent_id": tree_id,
                    "message_tree_id": tree_id,
                    "user_id": author,
                    "role": "assistant",
                    "payload_type": "MessagePayload",
                    "payload": payload(f"Reply {i}."),
                    "lang": lang,
                    "depth": 1,
                    "review_count": 0 if review is None else 3,
                    "review_result": review,
                    "deleted": gone,
                }
                for i in range(count)
            ]
        if rows:
            await conn.execute(message.insert(), rows)
    return tree_id


@dataclass(frozen=True)
class TreeRow:
    state: State
    active: bool
    won: datetime | None


@dataclass(frozen=True)
class Snapshot:
    """Everything a mutation may change."""

    trees: dict[uuid.UUID, TreeRow]
    log_rows: int
    idempotency_rows: int


async def snapshot(engine: AsyncEngine) -> Snapshot:
    mts = message_tree_state
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(mts.c.message_tree_id, mts.c.state, mts.c.active, mts.c.won_prompt_lottery_date)
        )
        trees = {r[0]: TreeRow(State(r[1]), r[2], r[3]) for r in rows}
        log_rows = (await conn.execute(select(func.count()).select_from(transition))).scalar_one()
        keys = (await conn.execute(select(func.count()).select_from(idempotency))).scalar_one()
    return Snapshot(trees, log_rows, keys)


async def tree_row(engine: AsyncEngine, tree_id: uuid.UUID) -> TreeRow:
    return (await snapshot(engine)).trees[tree_id]


async def log_of(engine: AsyncEngine, tree_id: uuid.UUID | None = None) -> list[dict[str, Any]]:
    """Rows of `treegate_transition`, by sequence."""
    query = select(transition).order_by(transition.c.sequence)
    if tree_id is not None:
        query = query.where(transition.c.message_tree_id == tree_id)
    async with engine.connect() as conn:
        return [dict(r._mapping) for r in await conn.execute(query)]


def check_applied(
    result: dict[str, Any],
    *,
    tree_id: uuid.UUID,
    source: State,
    target: State,
    operation: str,
    actor: str,
    reason: str | None,
    started: datetime,
    finished: datetime,
) -> None:
    """A TransitionApplied moving `tree_id` from `source` to `target`, with its log row."""
    assert result["__typename"] == "TransitionApplied", result
    tree = result["tree"]
    assert tree["messageTreeId"] == str(tree_id)
    assert tree["state"] == target.name
    assert tree["isTerminal"] is (target in INACTIVE)
    assert tree["active"] is (target not in INACTIVE)
    entry = result["transition"]
    assert entry["messageTreeId"] == str(tree_id)
    assert (entry["fromState"], entry["toState"]) == (source.name, target.name)
    assert entry["operation"] == operation
    assert entry["actor"] == actor
    assert entry["reason"] == reason
    assert started <= parse_time(entry["at"]) <= finished
    assert int(entry["sequence"]) > 0
