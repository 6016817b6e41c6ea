"""The message trees: for a tree in a given state, its shape, dates, messages and tree row."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from itertools import accumulate

from db.messages import PAYLOAD_TYPE, message_payload
from db.seed import texts
from db.seed.draw import choice, pick, randint, random_uuid
from db.seed.plan import (
    DAY,
    FULL_SIZE_CUM,
    FULL_SIZES,
    FULL_TREE_STATES,
    GOAL_TREE_SIZE,
    GROWING_SIZE_CUM,
    GROWING_SIZES,
    LANG_WEIGHTS,
    MAX_CHILDREN_COUNT,
    MAX_DEPTH,
    ORIGIN_BACKLOG,
    ORIGIN_DEMO,
    RECENT_S,
    ROOT_MAX_S,
    Row,
    growing_room,
    state_counts,
)
from db.seed.review import review_replies, review_root
from db.seed.users import UserPool
from domain.lottery import MAX_ACTIVE_TREES
from domain.states import State, is_active


class TreeGenerator:
    """The trees of a seed of `trees` trees, drawn from the trees' stream `rng`.

    `states` lists the state of every tree, shuffled; `tree` generates them one by one, in
    that order (each tree's draws depend on the ones before it).
    """

    def __init__(
        self,
        trees: int,
        rng: random.Random,
        origin: datetime,
        users: UserPool,
        max_active_trees: int = MAX_ACTIVE_TREES,
        lang_rng: random.Random | None = None,
    ) -> None:
        self.rng = rng
        # Languages drawn again for growing trees over the cap come from a stream of their own,
        # so that every other value of the data set stays what it is without a cap.
        self.lang_rng = lang_rng or random.Random(0)
        self.origin = origin
        self.users = users
        counts = state_counts(trees, max_active_trees)
        states = [state for state, n in counts.items() for _ in range(n)]
        rng.shuffle(states)
        self.states = states
        self.langs = [lang for lang, _ in LANG_WEIGHTS]
        self.lang_cum = list(accumulate(weight for _, weight in LANG_WEIGHTS))
        self.room = growing_room(max_active_trees)
        self.growing: Counter[str] = Counter()

    def _growing_lang(self, drawn: str) -> str:
        """`drawn`, or, if it has as many growing trees as the lottery allows, another language
        drawn by weight among those with room (`state_counts` leaves room for every one)."""
        if self.growing[drawn] >= self.room:
            open_langs = [(lang, w) for lang, w in LANG_WEIGHTS if self.growing[lang] < self.room]
            drawn = pick(
                self.lang_rng,
                [lang for lang, _ in open_langs],
                list(accumulate(w for _, w in open_langs)),
            )
        self.growing[drawn] += 1
        return drawn

    def tree(self, state: State, out: list[Row]) -> Row:
        """Append the messages of one tree in `state` to `out`; return its tree row."""
        rng = self.rng
        lang = pick(rng, self.langs, self.lang_cum)
        if state is State.GROWING:
            lang = self._growing_lang(lang)
        origin: str | None = ORIGIN_DEMO if rng.random() < 0.1 else None
        if state is State.BACKLOG_RANKING:
            origin = ORIGIN_BACKLOG

        # The shape: parent index per message (-1 for the root), in creation order.
        lottery = False
        chain = False
        if state in FULL_TREE_STATES:
            size = pick(rng, FULL_SIZES, FULL_SIZE_CUM)
            lottery = state is not State.BACKLOG_RANKING
        elif state is State.GROWING:
            size = pick(rng, GROWING_SIZES, GROWING_SIZE_CUM)
            lottery = True
        elif state is State.HALTED_BY_MODERATOR and rng.random() < 0.5:
            size = randint(rng, 2, 8)
            lottery = True
        elif state is State.ABORTED_LOW_GRADE and rng.random() < 0.1:
            # An activated backlog tree with nothing to rank: a single chain of replies.
            size = randint(rng, 2, 4)
            chain = True
            origin = ORIGIN_BACKLOG
        else:
            size = 1
        parents = _chain(size) if chain else _shape(rng, size)
        children = [0] * size
        depths = [0] * size
        for i in range(1, size):
            children[parents[i]] += 1
            depths[i] = depths[parents[i]] + 1

        # Dates, in seconds from the origin.
        if state in (State.INITIAL_PROMPT_REVIEW, State.GROWING):
            root_s = ROOT_MAX_S - randint(rng, 0, RECENT_S - 1)
        else:
            root_s = randint(rng, 0, ROOT_MAX_S - 1)
        lottery_s = root_s + randint(rng, 3600, 5 * DAY) if lottery else None
        times = [root_s] * size
        for i in range(1, size):
            start = times[parents[i]]
            if depths[i] == 1 and lottery_s is not None:
                start = lottery_s
            times[i] = start + _delay(rng)

        tree_id = random_uuid(rng)
        ids = [tree_id] + [random_uuid(rng) for _ in range(size - 1)]
        topic, prompt = texts.prompt(rng, lang)
        rows: list[Row] = []
        for i in range(size):
            if i == 0:
                text = prompt
            elif depths[i] % 2:
                text = texts.answer(rng, lang, topic)
            else:
                text = texts.follow_up(rng, lang, topic)
            rows.append(
                {
                    "id": ids[i],
                    "parent_id": None if i == 0 else ids[parents[i]],
                    "message_tree_id": tree_id,
                    "user_id": self.users.author(rng),
                    "role": "assistant" if depths[i] % 2 else "prompter",
                    "created_date": self.origin + timedelta(seconds=times[i]),
                    "payload_type": PAYLOAD_TYPE,
                    "payload": message_payload(text),
                    "lang": lang,
                    "depth": depths[i],
                    "children_count": children[i],
                    "deleted": False,
                    "review_count": 3,
                    "review_result": True,
                    "ranking_count": 0,
                    "rank": None,
                    "synthetic": False,
                    "edited": rng.random() < 0.02,
                    "model_name": None,
                    "emojis": _emojis(rng, red_flag=0.01),
                }
            )
        review_root(rng, self.users, state, rows[0], lottery)
        if size > 1:
            review_replies(rng, state, rows, parents, children)
        out.extend(rows)
        return {
            "message_tree_id": tree_id,
            "goal_tree_size": GOAL_TREE_SIZE,
            "max_depth": MAX_DEPTH,
            "max_children_count": MAX_CHILDREN_COUNT,
            "state": state.value,
            "active": is_active(state),
            "origin": origin,
            "won_prompt_lottery_date": (
                None if lottery_s is None else self.origin + timedelta(seconds=lottery_s)
            ),
            "lang": lang,
        }


def _shape(rng: random.Random, size: int) -> list[int]:
    """Parent indexes of a random tree of `size` messages within the depth and width limits."""
    parents = [-1]
    depths = [0]
    children = [0]
    while len(parents) < size:
        open_ = [
            i
            for i in range(len(parents))
            if depths[i] < MAX_DEPTH and children[i] < MAX_CHILDREN_COUNT
        ]
        parent = choice(rng, open_)
        parents.append(parent)
        depths.append(depths[parent] + 1)
        children.append(0)
        children[parent] += 1
    return parents


def _chain(size: int) -> list[int]:
    return [i - 1 for i in range(size)]


def _delay(rng: random.Random) -> int:
    """Seconds between a message and a reply: minutes to two days, mostly hours."""
    return 120 + int(2 * DAY * rng.random() ** 3)


def _emojis(rng: random.Random, *, red_flag: float) -> dict[str, int]:
    if rng.random() < 0.55:
        return {}
    emojis: dict[str, int] = {}
    up = int(6 * rng.random() ** 2)
    down = int(3 * rng.random() ** 3)
    skip = int(3 * rng.random() ** 3)
    if up:
        emojis["+1"] = up
    if down:
        emojis["-1"] = down
    if skip:
        emojis["_skip_reply"] = skip
    if rng.random() < red_flag:
        emojis["red_flag"] = 1
    return emojis
