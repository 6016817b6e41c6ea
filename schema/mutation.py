"""The Mutation root: thin fields that call the use cases."""

from __future__ import annotations

import strawberry

from domain.transitions import Operation
from resolvers import bulk, lottery, transitions
from resolvers.transitions import TransitionRequest
from schema.mutation_types import (
    BulkTransitionResult,
    DrawPromptLotteryInput,
    DrawPromptLotteryResult,
    HaltTreeInput,
    ResumeTreeInput,
    TransitionResult,
    TransitionTreeInput,
    TransitionTreesInput,
    render_bulk,
    render_lottery,
    render_transition,
)
from schema.types import Info


async def _change(
    info: Info,
    operation: Operation,
    input: TransitionTreeInput | HaltTreeInput | ResumeTreeInput,
) -> TransitionResult:
    request = TransitionRequest(
        tree_id=input.message_tree_id,
        operation=operation,
        target=input.to if isinstance(input, TransitionTreeInput) else None,
        expected=input.expected_state if isinstance(input, TransitionTreeInput) else None,
        reason=input.reason,
        idempotency_key=input.idempotency_key,
    )
    return render_transition(await transitions.transition_tree(info.context, request))


@strawberry.type
class Mutation:
    @strawberry.mutation(description="Move a tree along the transition table (role operator).")
    async def transition_tree(self, info: Info, input: TransitionTreeInput) -> TransitionResult:
        return await _change(info, Operation.TRANSITION_TREE, input)

    @strawberry.mutation(
        description="Halt a tree (role moderator). Halting a halted tree changes nothing."
    )
    async def halt_tree(self, info: Info, input: HaltTreeInput) -> TransitionResult:
        return await _change(info, Operation.HALT_TREE, input)

    @strawberry.mutation(
        description=(
            "Resume a halted tree (role moderator): to GROWING if it won the lottery before, "
            "else to INITIAL_PROMPT_REVIEW."
        )
    )
    async def resume_tree(self, info: Info, input: ResumeTreeInput) -> TransitionResult:
        return await _change(info, Operation.RESUME_TREE, input)

    @strawberry.mutation(
        description=(
            "Move every tree a filter matches (up to `limit`) to `to`, each as transitionTree "
            "would, in batches of 100 per transaction. Role: the table's rows into `to` "
            "(moderator to halt or resume); the lottery's move is never made."
        )
    )
    async def transition_trees(
        self, info: Info, input: TransitionTreesInput
    ) -> BulkTransitionResult:
        return render_bulk(await bulk.transition_trees(info.context, input.to_request()))

    @strawberry.mutation(
        description="Draw waiting prompts of a language into GROWING (role operator)."
    )
    async def draw_prompt_lottery(
        self, info: Info, input: DrawPromptLotteryInput
    ) -> DrawPromptLotteryResult:
        outcome = await lottery.draw_prompt_lottery(
            info.context,
            input.lang,
            1 if input.max_activate is None else input.max_activate,
            input.idempotency_key,
        )
        return render_lottery(outcome)
