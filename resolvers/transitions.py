"""transitionTree, haltTree and resumeTree: validated compare-and-set state changes."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncConnection

from db import log, trees, writes
from domain.decisions import (
    Rejection,
    RejectionReason,
    check_expected,
    check_guard,
    find_rule,
    resume_target,
)
from domain.errors import InvalidInput, check_text
from domain.guards import MESSAGE_GUARDS, TreeFacts
from domain.outcomes import (
    TransitionApplied,
    TransitionOutcome,
    TransitionRejected,
    TreeNotFound,
)
from domain.states import State
from domain.transitions import LEAST_ROLE, Operation
from domain.values import TreeState
from resolvers.auth import require
from resolvers.context import Context
from resolvers.idempotent import run_once

MAX_REASON_LENGTH = 2000


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    tree_id: UUID
    operation: Operation
    target: State | None = None  # None: halt or resume (the target follows from the tree)
    expected: State | None = None
    reason: str | None = None
    idempotency_key: str | None = None


async def transition_tree(ctx: Context, request: TransitionRequest) -> TransitionOutcome:
    """Apply one transition of the table, or say why not; nothing changes on a rejection."""
    require(ctx, LEAST_ROLE[request.operation], request.operation.value)
    if request.reason is not None and len(request.reason) > MAX_REASON_LENGTH:
        raise InvalidInput("reason", f"`reason` is longer than {MAX_REASON_LENGTH} characters")
    check_text("reason", request.reason)

    async def action(conn: AsyncConnection) -> TransitionOutcome:
        return await _apply(ctx, conn, request)

    async def reused(conn: AsyncConnection) -> TransitionOutcome:
        tree = await trees.get_tree(conn, request.tree_id)
        if tree is None:
            return _not_found(request.tree_id)
        return _rejected(
            tree,
            request.target,
            Rejection(
                RejectionReason.IDEMPOTENCY_KEY_REUSED,
                "this idempotency key was already used with a different input",
            ),
        )

    return await run_once(
        ctx,
        operation=request.operation.value,
        key=request.idempotency_key,
        arguments={
            "tree": str(request.tree_id),
            "to": request.target.value if request.target else None,
            "expected": request.expected.value if request.expected else None,
            "reason": request.reason,
        },
        action=action,
        reused=reused,
    )


async def _apply(
    ctx: Context, conn: AsyncConnection, request: TransitionRequest
) -> TransitionOutcome:
    tree = await trees.get_tree(conn, request.tree_id)
    if tree is None:
        return _not_found(request.tree_id)
    decision = await decide(ctx, conn, request, tree)
    if not isinstance(decision, Move):
        return decision
    return await write_move(ctx, conn, decision, request.reason)


@dataclass(frozen=True, slots=True)
class Move:
    """A transition the table, the role and the guard allow: what `write_move` makes."""

    tree: TreeState
    target: State
    operation: Operation


async def decide(
    ctx: Context, conn: AsyncConnection, request: TransitionRequest, tree: TreeState
) -> Move | TransitionOutcome:
    """What `request` does to `tree` (as read in this transaction), without writing: a `Move`,
    a rejection, or `TransitionApplied` with no transition (nothing to change).

    Raises `Forbidden` if the table's row needs a role the caller lacks."""
    rejection = check_expected(request.expected, tree.state)
    if rejection:
        return _rejected(tree, request.target, rejection)

    if request.operation is Operation.HALT_TREE and tree.state is State.HALTED_BY_MODERATOR:
        return TransitionApplied(tree, None)  # already halted: nothing to change
    target = _target(request, tree)
    if target is None:
        return _rejected(
            tree,
            None,
            Rejection(
                RejectionReason.NOT_ALLOWED,
                f"the tree is {tree.state.name}, not HALTED_BY_MODERATOR: nothing to resume",
            ),
        )
    rule = find_rule(tree.state, target, request.operation)
    if isinstance(rule, Rejection):
        return _rejected(tree, target, rule)
    require(ctx, rule.role, request.operation.value)  # the row's own role, from the table
    if rule.guard is not None:
        facts = (
            await writes.tree_facts(conn, tree)
            if rule.guard in MESSAGE_GUARDS
            else _tree_only_facts(tree)
        )
        guard_failure = check_guard(rule, facts)
        if guard_failure:
            return _rejected(tree, target, guard_failure)
    return Move(tree, target, request.operation)


async def write_move(
    ctx: Context,
    conn: AsyncConnection,
    move: Move,
    reason: str | None,
    bulk_operation_id: UUID | None = None,
) -> TransitionOutcome:
    """The compare-and-set from the state the move was decided on, and its log row; if the
    tree moved meanwhile, STATE_CHANGED and nothing written."""
    if ctx.hooks.before_write is not None:
        await ctx.hooks.before_write()
    tree, target = move.tree, move.target
    now = ctx.clock()
    moved = await writes.compare_and_set(conn, tree.message_tree_id, tree.state, target, now)
    if moved is None:
        current = await trees.get_tree(conn, tree.message_tree_id)
        if current is None:
            return _not_found(tree.message_tree_id)
        return _rejected(
            current,
            target,
            Rejection(
                RejectionReason.STATE_CHANGED,
                f"the tree moved from {tree.state.name} to {current.state.name} "
                "while this request was deciding: nothing was changed",
            ),
        )
    entry = await log.append(
        conn,
        tree_id=tree.message_tree_id,
        from_state=tree.state,
        to_state=target,
        operation=move.operation,
        actor=ctx.identity.name,
        reason=reason,
        at=now,
        bulk_operation_id=bulk_operation_id,
    )
    return TransitionApplied(moved, entry)


def _target(request: TransitionRequest, tree: TreeState) -> State | None:
    if request.operation is Operation.HALT_TREE:
        return State.HALTED_BY_MODERATOR
    if request.operation is Operation.RESUME_TREE:
        if tree.state is not State.HALTED_BY_MODERATOR:
            return None
        if request.target is not None:  # named (a bulk move): its row's guard decides
            return request.target
        return resume_target(tree.won_prompt_lottery_date is not None)
    assert request.target is not None, "transitionTree always names its target"
    return request.target


def _tree_only_facts(tree: TreeState) -> TreeFacts:
    return TreeFacts(
        root_found=True,
        root_review_result=None,
        accepted_messages=0,
        awaiting_review=0,
        goal_tree_size=tree.goal_tree_size,
        won_prompt_lottery_date=tree.won_prompt_lottery_date,
    )


def _not_found(tree_id: UUID) -> TreeNotFound:
    return TreeNotFound(tree_id, f"no message tree {tree_id}")


def _rejected(tree: TreeState, target: State | None, rejection: Rejection) -> TransitionRejected:
    return TransitionRejected(
        message_tree_id=tree.message_tree_id,
        current_state=tree.state,
        requested_state=target,
        reason=rejection.reason,
        message=rejection.message,
    )
