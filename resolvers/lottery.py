"""drawPromptLottery and lotteryStatus."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from db import log, writes
from db import lottery as repo
from domain.decisions import RejectionReason
from domain.errors import InvalidInput
from domain.lottery import Author, pick_author, pick_prompt, shortfall_message
from domain.outcomes import LotteryDrawn, LotteryOutcome, LotteryRejected, LotteryStatus
from domain.transitions import Operation, lottery_row
from domain.values import TreeState
from resolvers.auth import require
from resolvers.context import Context
from resolvers.idempotent import run_once

MAX_LANG_LENGTH = 32


def check_lang(lang: str) -> str:
    if not lang or len(lang) > MAX_LANG_LENGTH or not lang.isprintable():
        raise InvalidInput(
            "lang", f"`lang` must be a language code of 1 to {MAX_LANG_LENGTH} characters"
        )
    return lang


async def draw_prompt_lottery(
    ctx: Context, lang: str, max_activate: int, idempotency_key: str | None
) -> LotteryOutcome:
    """Activate up to `max_activate` waiting prompts of `lang`, as Open-Assistant draws them.

    Draws of one language are serialized (an advisory lock on PostgreSQL, the write lock on
    SQLite), so no tree is drawn twice and the language never exceeds `max_active_trees`
    growing trees, whatever the number of callers and processes.
    """
    rule = lottery_row()
    require(ctx, rule.role, rule.operation.value)
    check_lang(lang)
    if not 1 <= max_activate <= ctx.policy.max_activate:
        raise InvalidInput(
            "maxActivate", f"`maxActivate` must be between 1 and {ctx.policy.max_activate}"
        )

    async def action(conn: AsyncConnection) -> LotteryOutcome:
        return await _draw(ctx, conn, lang, max_activate)

    async def reused(_conn: AsyncConnection) -> LotteryOutcome:
        return LotteryRejected(
            lang,
            RejectionReason.IDEMPOTENCY_KEY_REUSED,
            "this idempotency key was already used with a different input",
        )

    return await run_once(
        ctx,
        operation=Operation.DRAW_PROMPT_LOTTERY.value,
        key=idempotency_key,
        arguments={"lang": lang, "max_activate": max_activate},
        action=action,
        reused=reused,
    )


async def _draw(ctx: Context, conn: AsyncConnection, lang: str, asked: int) -> LotteryDrawn:
    rule = lottery_row()  # the move a draw makes, from the transition table
    if ctx.hooks.lottery_begun is not None:
        await ctx.hooks.lottery_begun()
    await repo.lock_language(conn, lang)
    cap = ctx.policy.max_active_trees
    growing_before = growing = await repo.count_growing(conn, lang)
    drawn: list[TreeState] = []
    candidates_left = True
    attempts = 0
    # Read once per call, under the lock, and kept current as trees are drawn: the same
    # candidates as re-reading before every pick, without the repeated queries.
    authors: list[Author] | None = None
    prompts: dict[UUID, list[UUID]] = {}
    while len(drawn) < asked and growing < cap and attempts < 10 * asked:
        attempts += 1
        if authors is None:
            authors = await repo.candidate_authors(conn, lang)
            if ctx.hooks.lottery_authors_read is not None:
                await ctx.hooks.lottery_authors_read()
        if not authors:
            candidates_left = False
            break
        author = pick_author(authors, ctx.policy.rng)
        if author.user_id not in prompts:
            prompts[author.user_id] = await repo.author_prompts(conn, lang, author.user_id)
        waiting = prompts[author.user_id]
        if not waiting:
            # Their prompts left the waiting state since the authors were read: halts and
            # transitions do not take the lottery's lock. Not a candidate any more.
            authors.remove(author)
            continue
        tree_id = pick_prompt(waiting, ctx.policy.rng)
        waiting.remove(tree_id)
        if not waiting:
            authors.remove(author)
        now = ctx.clock()
        tree = await writes.compare_and_set(conn, tree_id, rule.source, rule.target, now)
        if tree is None:  # moved by a transition outside the lottery's lock: draw again
            continue
        await log.append(
            conn,
            tree_id=tree_id,
            from_state=rule.source,
            to_state=rule.target,
            operation=rule.operation,
            actor=ctx.identity.name,
            reason=f"drawn in the prompt lottery for {lang}",
            at=now,
        )
        drawn.append(tree)
        growing += 1
    return LotteryDrawn(
        lang=lang,
        drawn=tuple(drawn),
        growing_before=growing_before,
        growing_after=growing,
        max_active_trees=cap,
        message=shortfall_message(len(drawn), asked, growing, cap, candidates_left),
    )


async def lottery_status(ctx: Context, lang: str | None) -> list[LotteryStatus]:
    """Per language: waiting and growing trees, the cap and the free slots."""
    if lang is not None:
        check_lang(lang)
    async with ctx.db.use() as conn:
        counts = await repo.counts_by_language(conn, lang)
    if lang is not None and lang not in counts:
        counts[lang] = (0, 0)
    cap = ctx.policy.max_active_trees
    return [
        LotteryStatus(lang=code, waiting=waiting, growing=growing, max_active_trees=cap)
        for code, (waiting, growing) in sorted(counts.items())
    ]
