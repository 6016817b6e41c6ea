"""A mixed load of queries and mutations against a real server, and the invariants checked after
it: shared by the fault tests (`tests/faults/`) and the soak run (`bench/soak.py`).

Every mutation carries a unique token as its `reason` and `idempotencyKey`, so that what a
client was told can be matched with the transition log afterwards.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from tests.e2e.server import client_limits

PAGE = """query Page {
  messageTreeStates(first: 20) { totalCount edges { node { messageTreeId state } } }
}"""
TREE = (
    "query Tree($id: UUID!) { messageTreeState(messageTreeId: $id) { messageTreeId state active } }"
)
COUNTS = "query Counts { treeStateCounts { state count } }"
RESULT = """__typename
  ... on TransitionApplied { tree { messageTreeId state } transition { sequence } }
  ... on TransitionRejected { reason }
  ... on TreeNotFound { messageTreeId }"""
HALT = (
    "mutation Halt($input: HaltTreeInput!) { result: haltTree(input: $input) { " + RESULT + " } }"
)
RESUME = (
    "mutation Resume($input: ResumeTreeInput!) { result: resumeTree(input: $input) { "
    + RESULT
    + " } }"
)
TRANSITION = (
    "mutation Move($input: TransitionTreeInput!) { result: transitionTree(input: $input) { "
    + RESULT
    + " } }"
)
DRAW = """mutation Draw($input: DrawPromptLotteryInput!) {
  result: drawPromptLottery(input: $input) {
    __typename ... on LotteryDrawn { drawn { messageTreeId } } ... on LotteryRejected { reason }
  }
}"""
TARGETS = ["PROMPT_LOTTERY_WAITING", "RANKING", "READY_FOR_SCORING", "READY_FOR_EXPORT"]


@dataclass(slots=True)
class Call:
    """One request and what its client saw."""

    kind: str
    started: float
    ended: float = 0.0
    status: int = 0
    outcome: str = ""
    """ok (a query), applied, unchanged (nothing to do), rejected, unavailable (503
    DATABASE_UNAVAILABLE), overloaded (503 SERVER_OVERLOADED), error (another GraphQL error or
    status), transport (no answer)."""
    reason: str | None = None
    token: str | None = None
    drawn: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.outcome not in ("ok", "applied", "unchanged", "rejected")

    @property
    def seconds(self) -> float:
        return self.ended - self.started


@dataclass(slots=True)
class MixedLoad:
    """`clients` concurrent clients, each sending one request after another: half queries (a
    page with its count, one tree, counts by state), half mutations (halt, resume, a table
    transition, a lottery draw)."""

    base_url: str
    key: str
    trees: Sequence[str]
    clients: int = 20
    seed: int = 0
    timeout: float = 15.0
    calls: list[Call] = field(default_factory=list)

    async def run(self, until: Callable[[], bool], max_calls: int = 1_000_000) -> list[Call]:
        limits = client_limits(self.clients)
        headers = {"Authorization": f"Bearer {self.key}"}
        async with httpx.AsyncClient(
            base_url=self.base_url, timeout=self.timeout, limits=limits, headers=headers
        ) as client:
            await asyncio.gather(
                *(self._client(client, n, until, max_calls) for n in range(self.clients))
            )
        return self.calls

    async def _client(
        self, client: httpx.AsyncClient, n: int, until: Callable[[], bool], max_calls: int
    ) -> None:
        rng = random.Random(self.seed * 1000 + n)
        while not until() and len(self.calls) < max_calls:
            await self.one(client, rng)

    async def one(self, client: httpx.AsyncClient, rng: random.Random) -> Call:
        pick = rng.random()
        tree = rng.choice(self.trees)
        token = f"load-{uuid.uuid4().hex[:16]}"
        document: str
        variables: dict[str, Any] = {}
        if pick < 0.2:
            kind, document = "page", PAGE
        elif pick < 0.35:
            kind, document, variables = "tree", TREE, {"id": tree}
        elif pick < 0.5:
            kind, document = "counts", COUNTS
        elif pick < 0.65:
            kind, document = "halt", HALT
            variables = {"input": {"messageTreeId": tree, "reason": token, "idempotencyKey": token}}
        elif pick < 0.8:
            kind, document = "resume", RESUME
            variables = {"input": {"messageTreeId": tree, "reason": token, "idempotencyKey": token}}
        elif pick < 0.95:
            kind, document = "transition", TRANSITION
            target = rng.choice(TARGETS)
            variables = {
                "input": {
                    "messageTreeId": tree,
                    "to": target,
                    "reason": token,
                    "idempotencyKey": token,
                }
            }
        else:
            kind, document = "draw", DRAW
            variables = {"input": {"lang": "en", "maxActivate": 1, "idempotencyKey": token}}
        call = Call(kind, time.monotonic(), token=token if kind in MUTATIONS else None)
        try:
            response = await client.post(
                "/graphql", json={"query": document, "variables": variables}
            )
        except httpx.HTTPError as exc:
            call.ended = time.monotonic()
            call.outcome, call.reason = "transport", type(exc).__name__
            self.calls.append(call)
            return call
        call.ended = time.monotonic()
        call.status = response.status_code
        _read(call, response)
        self.calls.append(call)
        return call


MUTATIONS = frozenset({"halt", "resume", "transition", "draw"})


def _read(call: Call, response: httpx.Response) -> None:
    try:
        body = response.json()
    except ValueError:
        call.outcome, call.reason = "error", f"status {response.status_code}, not JSON"
        return
    errors = body.get("errors") or []
    if errors:
        extensions = errors[0].get("extensions") or {}
        code = extensions.get("code")
        if response.status_code == 503 and code == "DATABASE_UNAVAILABLE":
            call.outcome, call.reason = "unavailable", extensions.get("reason")
        elif response.status_code == 503 and code == "SERVER_OVERLOADED":
            call.outcome, call.reason = "overloaded", code
        else:
            call.outcome, call.reason = "error", f"{response.status_code} {code}"
        return
    if response.status_code != 200:
        call.outcome, call.reason = "error", f"status {response.status_code}"
        return
    result = (body.get("data") or {}).get("result")
    if result is None:
        call.outcome = "ok"
    elif result["__typename"] == "TransitionApplied":
        # No transition: the tree was already where asked (halting a halted tree).
        call.outcome = "applied" if result["transition"] is not None else "unchanged"
    elif result["__typename"] == "LotteryDrawn":
        call.drawn = [t["messageTreeId"] for t in result["drawn"]]
        call.outcome = "applied" if call.drawn else "rejected"
    else:
        call.outcome = "rejected"


async def tree_states(url: str) -> dict[str, str]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT message_tree_id, state FROM message_tree_state")
    finally:
        await connection.close()
    return {str(r["message_tree_id"]): r["state"] for r in rows}


@dataclass(slots=True)
class Invariants:
    """What the database holds after a load, checked against what the clients were told."""

    log_rows: int
    applied: int
    """Mutations whose client was told TransitionApplied (or a draw with trees)."""
    committed_unanswered: int
    """Mutations answered 503 (or not at all) that had committed all the same: a lost answer,
    which the client's retry with the same idempotency key replays."""
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations


async def check_invariants(url: str, initial: dict[str, str], calls: Sequence[Call]) -> Invariants:
    """- replaying the log from the initial states gives every tree's current state: no tree
      changed state without a log row, and no log row without its change;
    - every mutation its client saw applied is in the log exactly once, and no mutation more
      than once (its token is its reason; a draw's trees each won exactly once);
    """
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT sequence, message_tree_id, from_state, to_state, reason, operation"
            " FROM treegate_transition ORDER BY sequence"
        )
        current = {
            str(r["message_tree_id"]): r["state"]
            for r in await connection.fetch("SELECT message_tree_id, state FROM message_tree_state")
        }
    finally:
        await connection.close()
    violations: list[str] = []
    replayed = dict(initial)
    for row in rows:
        tree = str(row["message_tree_id"])
        if replayed.get(tree) != row["from_state"]:
            violations.append(
                f"log row {row['sequence']} moves {tree} from {row['from_state']}, "
                f"but the replay has it in {replayed.get(tree)}"
            )
        replayed[tree] = row["to_state"]
    for tree, state in current.items():
        if replayed.get(tree) != state:
            violations.append(f"tree {tree} is {state}, its log replays to {replayed.get(tree)}")
    by_reason = Counter(r["reason"] for r in rows if r["reason"])
    wins = Counter(
        str(r["message_tree_id"])
        for r in rows
        if (r["from_state"], r["to_state"]) == ("prompt_lottery_waiting", "growing")
    )
    applied = unanswered = 0
    for call in calls:
        if call.token is None:
            continue
        if call.kind == "draw":
            if call.outcome == "applied":
                applied += 1
                violations += [
                    f"drawn tree {t} has no win in the log" for t in call.drawn if not wins[t]
                ]
            continue
        seen = by_reason[call.token]
        if seen > 1:
            violations.append(f"{call.kind} {call.token} is in the log {seen} times")
        if call.outcome == "applied":
            applied += 1
            if seen != 1:
                violations.append(
                    f"{call.kind} {call.token} was applied but is logged {seen} times"
                )
        elif call.outcome in ("rejected", "unchanged") and seen:
            violations.append(f"{call.kind} {call.token} was {call.outcome} but is in the log")
        elif call.failed and seen:
            unanswered += 1
    violations += [f"tree {t} won the lottery {n} times" for t, n in wins.items() if n > 1]
    return Invariants(len(rows), applied, unanswered, violations)


def recovery_after(calls: Sequence[Call], accepting: float) -> float:
    """Seconds from the database accepting connections again until the start of the first call
    after which no call failed (0 if none failed after it came back)."""
    failed = [c.started for c in calls if c.failed and c.started >= accepting]
    return max(0.0, max(failed, default=accepting) - accepting)


def tally(calls: Sequence[Call]) -> dict[str, int]:
    """Calls by outcome, with the reason of the failed ones (`unavailable:pool_timeout`)."""
    counts: Counter[str] = Counter()
    for call in calls:
        counts[f"{call.outcome}:{call.reason}" if call.failed else call.outcome] += 1
    return dict(sorted(counts.items()))
