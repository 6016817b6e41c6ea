"""A seeded random walk of mutations, checked step by step against a model of docs/design.md's
table; afterwards, replaying each tree's log gives its current state."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from domain.states import State
from tests.mutations.conftest import ApiKeys
from tests.mutations.support import (
    DRAW,
    HALT,
    LOTTERY_ROW,
    RESUME,
    TRANSITION,
    TRANSITION_TREE_ROWS,
    body,
    make_tree,
    mutate,
    snapshot,
)

S = State
STEPS = 200
FEED = """query($id: UUID, $after: String) {
  transitionLog(messageTreeId: $id, after: $after, first: 100) {
    pageInfo { hasNextPage endCursor }
    nodes { sequence messageTreeId fromState toState operation }
  }
}"""
ENTRY = (S.INITIAL_PROMPT_REVIEW, S.BACKLOG_RANKING)


class Model:
    """Where each tree should be, and whether it won the lottery, by docs/design.md's rules."""

    def __init__(self, trees: dict[uuid.UUID, State]) -> None:
        self.state = dict(trees)
        self.won = dict.fromkeys(trees, False)
        self.changes = 0
        self.kinds: Counter[str] = Counter()

    def targets(self, tree: uuid.UUID) -> list[State]:
        return [t for s, t in TRANSITION_TREE_ROWS if s is self.state[tree]]

    def move(self, tree: uuid.UUID, target: State, kind: str) -> None:
        self.kinds[kind] += 1
        self.state[tree] = target
        self.changes += 1


def check_moved(result: dict[str, Any], tree: uuid.UUID, source: State, target: State) -> None:
    assert result["__typename"] == "TransitionApplied", result
    assert result["tree"]["state"] == target.name
    entry = result["transition"]
    assert (entry["messageTreeId"], entry["fromState"], entry["toState"]) == (
        str(tree),
        source.name,
        target.name,
    )


def check_refused(result: dict[str, Any], current: State, reason: str) -> None:
    assert result["__typename"] == "TransitionRejected", result
    assert (result["currentState"], result["reason"]) == (current.name, reason)


async def step(client: httpx.AsyncClient, rng: random.Random, model: Model, key: str) -> None:
    tree = rng.choice(list(model.state))  # in creation order: ids are random
    current = model.state[tree]
    operation = rng.choices(["transition", "halt", "resume", "draw"], [8, 1, 1.5, 1])[0]
    if current is S.PROMPT_LOTTERY_WAITING and rng.random() < 0.5:
        operation = "draw"  # only the lottery moves a waiting tree on (besides haltTree)
    if operation == "transition":
        targets = model.targets(tree)
        target = rng.choice(targets) if targets and rng.random() < 0.85 else rng.choice(list(State))
        request: dict[str, Any] = {"messageTreeId": str(tree), "to": target.name}
        if rng.random() < 0.2:
            request["expectedState"] = rng.choice([current, rng.choice(list(State))]).name
        result = await mutate(client, TRANSITION, request, key)
        if request.get("expectedState", current.name) != current.name:
            check_refused(result, current, "STATE_CHANGED")
        elif (current, target) in TRANSITION_TREE_ROWS:
            check_moved(result, tree, current, target)
            model.move(tree, target, "transition")
        else:
            reason = "LOTTERY_ONLY" if (current, target) == LOTTERY_ROW else "NOT_ALLOWED"
            check_refused(result, current, reason)
    elif operation == "halt":
        result = await mutate(client, HALT, {"messageTreeId": str(tree)}, key)
        if current is S.HALTED_BY_MODERATOR:
            assert result["__typename"] == "TransitionApplied"
            assert result["transition"] is None
        else:
            check_moved(result, tree, current, S.HALTED_BY_MODERATOR)
            model.move(tree, S.HALTED_BY_MODERATOR, "halt")
    elif operation == "resume":
        result = await mutate(client, RESUME, {"messageTreeId": str(tree)}, key)
        if current is S.HALTED_BY_MODERATOR:
            target = S.GROWING if model.won[tree] else S.INITIAL_PROMPT_REVIEW
            check_moved(result, tree, current, target)
            model.move(tree, target, "resume")
        else:
            check_refused(result, current, "NOT_ALLOWED")
    else:
        waiting = {t for t, s in model.state.items() if s is S.PROMPT_LOTTERY_WAITING}
        result = await mutate(client, DRAW, {"lang": "en", "maxActivate": 1}, key)
        assert result["__typename"] == "LotteryDrawn"
        drawn = [uuid.UUID(t["messageTreeId"]) for t in result["drawn"]]
        assert len(drawn) == min(1, len(waiting))
        for tree_id in drawn:
            assert tree_id in waiting
            model.move(tree_id, S.GROWING, "draw")
            model.won[tree_id] = True


async def read_log(client: httpx.AsyncClient, tree_id: uuid.UUID | None) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    after = None
    while True:
        variables = {"id": None if tree_id is None else str(tree_id), "after": after}
        page = (await body(client, FEED, variables))["data"]["transitionLog"]
        rows += page["nodes"]
        if not page["pageInfo"]["hasNextPage"]:
            return rows
        after = page["pageInfo"]["endCursor"]


async def test_random_walk_and_log_replay(
    client: httpx.AsyncClient, engine: AsyncEngine, api_keys: ApiKeys
) -> None:
    rng = random.Random(20240601)
    start = {await make_tree(engine, ENTRY[i % 2]): ENTRY[i % 2] for i in range(6)}
    model = Model(start)
    for _ in range(STEPS):
        await step(client, rng, model, api_keys.admin)
    # The walk really moved the trees, with every kind of mutation.
    assert model.changes >= 25
    # (Draws happen in nearly every walk; which tree is drawn is up to the lottery.)
    assert {"transition", "halt", "resume"} <= set(model.kinds), model.kinds

    after = await snapshot(engine)
    assert {t: row.state for t, row in after.trees.items()} == model.state
    assert after.log_rows == model.changes
    everything = await read_log(client, None)
    assert len(everything) == model.changes
    sequences = [int(r["sequence"]) for r in everything]
    assert sequences == sorted(set(sequences))

    for tree_id, first_state in start.items():
        log = await read_log(client, tree_id)
        assert all(r["messageTreeId"] == str(tree_id) for r in log)
        state = State[log[0]["fromState"]] if log else first_state
        assert state is first_state
        for row in log:
            assert row["fromState"] == state.name  # every row starts where the last one ended
            state = State[row["toState"]]
        assert state is model.state[tree_id]
        assert after.trees[tree_id].state is state
