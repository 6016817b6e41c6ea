"""The user pool: user ids, disabled and deleted users, Zipf-like authorship, and user rows."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from itertools import accumulate

from db.seed.draw import choice, pick, randint, random_uuid
from db.seed.plan import (
    DAY,
    DELETED_USER_SHARE,
    DISABLED_USER_SHARE,
    USER_STATS_SHARE,
    USER_ZIPF_EXPONENT,
    Row,
)
from db.seed.texts import FIRST_NAMES, LAST_INITIALS


class UserPool:
    """`n_users` users drawn from their own stream `rng`, so that they can be produced lazily
    in chunks (`rows`) without changing the trees."""

    def __init__(self, n_users: int, rng: random.Random, origin: datetime) -> None:
        self.rng = rng
        self.origin = origin
        self.n_users = n_users
        self.user_ids = [random_uuid(rng) for _ in range(n_users)]
        n_disabled = max(1, round(n_users * DISABLED_USER_SHARE))
        n_deleted = max(1, round(n_users * DELETED_USER_SHARE))
        picked = rng.sample(range(n_users), n_disabled + n_deleted)
        self.disabled = frozenset(picked[:n_disabled])
        self.deleted = frozenset(picked[n_disabled:])
        self.inactive_authors = sorted(self.disabled | self.deleted)
        # Zipf-like authorship: the users' popularity ranks are a permutation of 0..n-1.
        ranks = list(range(n_users))
        rng.shuffle(ranks)
        by_rank = [self.user_ids[0]] * n_users
        for index, rank in enumerate(ranks):
            by_rank[rank] = self.user_ids[index]
        self.authors_by_rank = by_rank
        self.author_cum = list(accumulate((r + 1) ** -USER_ZIPF_EXPONENT for r in range(n_users)))

    def rows(self, start: int, stop: int) -> tuple[list[Row], list[Row]]:
        """The `user` and `user_stats` rows of users `start` to `stop` (exclusive), in order."""
        rng = self.rng
        users: list[Row] = []
        stats: list[Row] = []
        for index in range(start, stop):
            user_id = self.user_ids[index]
            first = choice(rng, FIRST_NAMES)
            style = rng.random()
            if style < 0.4:
                display = f"{first} {choice(rng, LAST_INITIALS)}."
            elif style < 0.7:
                display = first
            else:
                display = f"{first.lower()}{randint(rng, 1, 999)}"
            created = self.origin - timedelta(seconds=randint(rng, 1, 60 * DAY - 1))
            users.append(
                {
                    "id": user_id,
                    "username": f"user-{index + 1}",
                    "auth_method": "local",
                    "display_name": display,
                    "created_date": created,
                    "enabled": index not in self.disabled,
                    "deleted": index in self.deleted,
                }
            )
            if rng.random() < USER_STATS_SHARE:
                month = int(21 * rng.random() ** 3)
                total = month * randint(rng, 2, 6) + randint(rng, 1, 120)
                stats.append({"user_id": user_id, "time_frame": "month", "reply_ranked_1": month})
                stats.append({"user_id": user_id, "time_frame": "total", "reply_ranked_1": total})
        return users, stats

    def author(self, rng: random.Random) -> uuid.UUID:
        """A message author, drawn from `rng` (the trees' stream): a few users are prolific."""
        return pick(rng, self.authors_by_rank, self.author_cum)
