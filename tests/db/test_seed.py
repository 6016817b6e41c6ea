"""The demo data generator: determinism, state allocation, tree structure, and a SQLite run."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

import db.seed.batches as batches_module
from db import tables
from db.engine import create_engine
from db.migrate import upgrade
from db.seed import (
    GOAL_TREE_SIZE,
    MAX_CHILDREN_COUNT,
    MAX_DEPTH,
    OASST2_STATE_COUNTS,
    RARE_STATES,
    SeedBatch,
    count_trees,
    generate,
    seed,
    state_counts,
)
from db.seed.plan import LANG_WEIGHTS
from domain.lottery import MAX_ACTIVE_TREES
from domain.states import State, is_active

Row = dict[str, Any]

LOTTERY_STATES = {
    State.GROWING,
    State.RANKING,
    State.READY_FOR_SCORING,
    State.READY_FOR_EXPORT,
    State.SCORING_FAILED,
}
FULL_TREE_STATES = {
    State.RANKING,
    State.READY_FOR_SCORING,
    State.READY_FOR_EXPORT,
    State.SCORING_FAILED,
    State.BACKLOG_RANKING,
}


def collect(batches: list[SeedBatch]) -> tuple[list[Row], list[Row], list[Row], list[Row]]:
    users = [row for b in batches for row in b.users]
    stats = [row for b in batches for row in b.user_stats]
    messages = [row for b in batches for row in b.messages]
    trees = [row for b in batches for row in b.trees]
    return users, stats, messages, trees


def largest_remainder(n: int) -> dict[State, int]:
    """An independent largest-remainder allocation of `n` trees, plus the documented extras."""
    total = sum(OASST2_STATE_COUNTS.values())
    quotas = {state: n * count / total for state, count in OASST2_STATE_COUNTS.items()}
    counts = {state: int(q) for state, q in quotas.items()}
    by_remainder = sorted(
        quotas, key=lambda s: (quotas[s] - counts[s], OASST2_STATE_COUNTS[s]), reverse=True
    )
    for state in by_remainder[: n - sum(counts.values())]:
        counts[state] += 1
    result = {state: counts.get(state, 0) for state in State}
    if n >= 200 and result[State.RANKING] == 0:
        result[State.RANKING] += 1
        result[State.PROMPT_LOTTERY_WAITING] -= 1
    if n >= 500:
        for state in RARE_STATES:
            result[state] += max(1, n // 2000)
            result[State.READY_FOR_EXPORT] -= max(1, n // 2000)
    # Growing trees beyond the lottery's cap in every language (less the free fifth) wait.
    room = (MAX_ACTIVE_TREES - MAX_ACTIVE_TREES // 5) * len(LANG_WEIGHTS)
    excess = max(result[State.GROWING] - room, 0)
    result[State.GROWING] -= excess
    result[State.PROMPT_LOTTERY_WAITING] += excess
    return result


# -- determinism ----------------------------------------------------------------------------


def test_generate_is_deterministic() -> None:
    first = list(generate(300, seed=7))
    second = list(generate(300, seed=7))
    assert first == second
    assert repr(first) == repr(second)
    other = list(generate(300, seed=8))
    assert other != first
    assert {t["message_tree_id"] for b in other for t in b.trees}.isdisjoint(
        {t["message_tree_id"] for b in first for t in b.trees}
    )


def test_generate_does_not_depend_on_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    reference = collect(list(generate(120, seed=3)))
    monkeypatch.setattr(batches_module, "USER_CHUNK", 7)
    rebatched = list(batches_module.iter_batches(120, 3, now=None, batch_trees=13))
    assert len(rebatched) > 10
    assert collect(rebatched) == reference
    # Users (and their stats) come before any message.
    first_message_batch = next(i for i, b in enumerate(rebatched) if b.messages)
    assert all(not b.users for b in rebatched[first_message_batch + 1 :])


def test_generate_with_now_ends_at_now() -> None:
    now = datetime(2030, 5, 17, 12, 0, tzinfo=UTC)
    _, _, messages, trees = collect(list(generate(400, seed=2, now=now)))
    dates = [m["created_date"] for m in messages]
    assert max(dates) <= now
    assert min(dates) >= datetime(2029, 8, 1, tzinfo=UTC)
    lottery = [t["won_prompt_lottery_date"] for t in trees if t["won_prompt_lottery_date"]]
    assert lottery
    assert max(lottery) <= now
    with pytest.raises(ValueError, match="aware"):
        generate(10, now=datetime(2030, 5, 17))


def test_generate_rejects_negative_counts() -> None:
    with pytest.raises(ValueError, match=">= 0"):
        generate(-1)


# -- state allocation -----------------------------------------------------------------------


def test_state_counts_for_2000_trees() -> None:
    _, _, _, trees = collect(list(generate(2000, seed=0)))
    counts = Counter(State(t["state"]) for t in trees)
    expected = largest_remainder(2000)
    assert {s: counts.get(s, 0) for s in State} == expected
    assert sum(counts.values()) == 2000
    assert set(counts) == set(State)
    assert state_counts(2000) == expected


@pytest.mark.parametrize("n", [0, 1, 7, 50, 199, 200, 499, 500, 2000, 70_642, 1_000_000])
def test_state_counts_sum_and_minimums(n: int) -> None:
    counts = state_counts(n)
    assert set(counts) == set(State)
    assert sum(counts.values()) == n
    assert all(count >= 0 for count in counts.values())
    assert counts == largest_remainder(n)
    if n >= 200:
        assert counts[State.RANKING] >= 1
    if n >= 500:
        assert all(counts[state] >= 1 for state in RARE_STATES)


def test_state_counts_match_oasst2_at_full_size_where_the_lottery_cap_allows() -> None:
    counts = state_counts(70_642, max_active_trees=1_000)
    rare = sum(counts[state] for state in RARE_STATES)
    assert counts[State.READY_FOR_EXPORT] + rare == OASST2_STATE_COUNTS[State.READY_FOR_EXPORT]
    for state in OASST2_STATE_COUNTS.keys() - {State.READY_FOR_EXPORT}:
        assert counts[state] == OASST2_STATE_COUNTS[state]


def test_growing_trees_beyond_the_cap_wait_for_the_lottery() -> None:
    capped = state_counts(70_642)
    assert capped[State.GROWING] == 8 * len(LANG_WEIGHTS)
    moved = OASST2_STATE_COUNTS[State.GROWING] - capped[State.GROWING]
    assert capped[State.PROMPT_LOTTERY_WAITING] == (
        OASST2_STATE_COUNTS[State.PROMPT_LOTTERY_WAITING] + moved
    )
    assert state_counts(2000, max_active_trees=0)[State.GROWING] == 0


@pytest.mark.parametrize("cap", [0, 1, 3, 10])
def test_no_language_has_more_growing_trees_than_the_cap(cap: int) -> None:
    _, _, _, trees = collect(list(generate(5000, seed=4, max_active_trees=cap)))
    growing = Counter(t["lang"] for t in trees if t["state"] == State.GROWING.value)
    assert max(growing.values(), default=0) <= cap
    assert sum(growing.values()) == state_counts(5000, cap)[State.GROWING]


def test_small_seed_still_covers_the_common_states() -> None:
    counts = state_counts(50)
    assert all(counts[state] >= 1 for state in OASST2_STATE_COUNTS if state is not State.RANKING)


# -- structure ------------------------------------------------------------------------------


def check_invariants(batches: list[SeedBatch]) -> None:
    users, stats, messages, trees = collect(batches)
    user_ids = {u["id"] for u in users}
    assert len(user_ids) == len(users)
    assert len({u["username"] for u in users}) == len(users)
    assert {s["user_id"] for s in stats} <= user_ids
    assert len({(s["user_id"], s["time_frame"]) for s in stats}) == len(stats)
    assert batches[0].users, "users come in the first batch"

    by_id: dict[UUID, Row] = {}
    by_tree: dict[UUID, list[Row]] = defaultdict(list)
    for m in messages:
        assert m["id"] not in by_id
        by_id[m["id"]] = m
        by_tree[m["message_tree_id"]].append(m)
        assert m["user_id"] in user_ids
        assert m["created_date"].tzinfo is not None
        assert m["payload_type"] == "MessagePayload"
        text = m["payload"]["payload"]["text"]
        assert m["payload"]["payload_type"] == "MessagePayload"
        assert isinstance(text, str)
        assert 0 < len(text) < 400
        assert isinstance(m["emojis"], dict)

    # Within a batch, a tree's messages precede the tree row (foreign key).
    for batch in batches:
        batch_messages = {m["id"] for m in batch.messages}
        assert all(t["message_tree_id"] in batch_messages for t in batch.trees)

    assert len(by_tree) == len(trees)
    for tree in trees:
        state = State(tree["state"])
        tree_id = tree["message_tree_id"]
        assert tree["active"] == is_active(state)
        assert (tree["goal_tree_size"], tree["max_depth"], tree["max_children_count"]) == (
            GOAL_TREE_SIZE,
            MAX_DEPTH,
            MAX_CHILDREN_COUNT,
        )
        tree_messages = by_tree[tree_id]
        root = by_id[tree_id]
        assert root["parent_id"] is None
        assert root["message_tree_id"] == tree_id
        assert root["role"] == "prompter"
        assert root["depth"] == 0

        children: Counter[UUID] = Counter()
        for m in tree_messages:
            assert m["lang"] == tree["lang"]
            if m is root:
                continue
            assert m["parent_id"] is not None
            parent = by_id[m["parent_id"]]
            assert parent["message_tree_id"] == tree_id
            assert m["depth"] == parent["depth"] + 1 <= tree["max_depth"]
            assert m["role"] == ("assistant" if parent["role"] == "prompter" else "prompter")
            assert m["created_date"] > parent["created_date"]
            children[parent["id"]] += 1
        for m in tree_messages:
            assert m["children_count"] == children[m["id"]] <= tree["max_children_count"]

        # Ranks among siblings are 0..k-1.
        ranks: dict[UUID, list[int]] = defaultdict(list)
        for m in tree_messages:
            if m["rank"] is not None:
                ranks[m["parent_id"]].append(m["rank"])
        for group in ranks.values():
            assert sorted(group) == list(range(len(group)))
        if ranks:
            assert state is State.READY_FOR_EXPORT

        lottery = tree["won_prompt_lottery_date"]
        grew = len(tree_messages) > 1
        if state in LOTTERY_STATES:
            assert lottery is not None
        elif state is State.HALTED_BY_MODERATOR:
            assert (lottery is not None) == grew
        else:
            assert lottery is None
        if lottery is not None:
            assert lottery.tzinfo is not None
            assert root["created_date"] < lottery
            assert all(lottery < m["created_date"] for m in tree_messages if m["depth"] == 1)

        if state in FULL_TREE_STATES:
            assert 8 <= len(tree_messages) <= 14
        elif state is State.GROWING:
            assert 1 <= len(tree_messages) <= 8
        elif state in (State.INITIAL_PROMPT_REVIEW, State.PROMPT_LOTTERY_WAITING):
            assert len(tree_messages) == 1

        if state is State.INITIAL_PROMPT_REVIEW:
            assert root["review_result"] is None
            assert 0 <= root["review_count"] <= 2
        elif state is State.PROMPT_LOTTERY_WAITING:
            assert (root["review_result"], root["review_count"]) == (True, 3)
        elif state is State.ABORTED_LOW_GRADE and not grew:
            assert (root["review_result"], root["review_count"]) == (False, 3)
        if state is State.BACKLOG_RANKING:
            assert tree["origin"] == "backlog-import"
        if state in FULL_TREE_STATES:
            assert all(m["review_result"] is not None for m in tree_messages)


def test_structure_invariants() -> None:
    check_invariants(list(generate(2000, seed=5)))


def test_structure_invariants_small() -> None:
    for s in range(5):
        check_invariants(list(generate(30, seed=s)))


def test_average_messages_per_tree() -> None:
    _, _, messages, trees = collect(list(generate(5000, seed=0)))
    assert len(trees) == 5000
    assert 2.5 <= len(messages) / len(trees) <= 3.5


def test_users_and_languages_are_skewed() -> None:
    users, stats, messages, trees = collect(list(generate(5000, seed=0)))
    assert len(users) == 1250
    assert any(not u["enabled"] for u in users)
    assert any(u["deleted"] for u in users)
    assert {s["time_frame"] for s in stats} == {"month", "total"}
    authors = Counter(m["user_id"] for m in messages)
    assert authors.most_common(1)[0][1] > 20 * len(messages) / len(users)
    langs = Counter(t["lang"] for t in trees)
    assert langs.most_common(2)[0][0] == "en"
    assert langs.most_common(2)[1][0] == "es"
    assert len(langs) > 15


# -- database -------------------------------------------------------------------------------


async def test_seed_sqlite(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'seed.db'}")
    try:
        await upgrade(engine)
        report = await seed(engine, 300, seed=1, batch_trees=70)
        assert report.trees == 300
        assert report.users == 75
        assert await count_trees(engine) == 300
        async with engine.connect() as conn:
            n_messages = await conn.scalar(select(func.count()).select_from(tables.message))
            n_users = await conn.scalar(select(func.count()).select_from(tables.user))
            root = (
                await conn.execute(
                    select(tables.message).where(
                        tables.message.c.parent_id.is_(None), tables.message.c.depth == 0
                    )
                )
            ).first()
        assert n_messages == report.messages
        assert n_users == report.users
        _, _, messages, _ = collect(list(generate(300, seed=1)))
        assert report.messages == len(messages)
        assert root is not None
        assert root.created_date.tzinfo is not None
        assert isinstance(root.payload["payload"]["text"], str)
    finally:
        await engine.dispose()
