"""Inputs and result unions of the mutations. Expected outcomes are union members."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from domain import outcomes
from schema.enums import RejectionReason, State
from schema.log_types import StateTransition
from schema.types import MessageTreeState


@strawberry.input
class TransitionTreeInput:
    message_tree_id: UUID
    to: State
    expected_state: State | None = strawberry.field(
        default=None, description="The state you saw; if the tree is elsewhere: STATE_CHANGED."
    )
    reason: str | None = None
    idempotency_key: str | None = strawberry.field(
        default=None, description="Retry-safe: the same key and input returns the first result."
    )


@strawberry.input
class HaltTreeInput:
    message_tree_id: UUID
    reason: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class ResumeTreeInput:
    message_tree_id: UUID
    reason: str | None = None
    idempotency_key: str | None = None


@strawberry.input
class DrawPromptLotteryInput:
    lang: str
    max_activate: int | None = strawberry.field(
        default=1, description="Trees to activate, at most."
    )
    idempotency_key: str | None = None


@strawberry.type(
    description="The change was made; `transition` is null when there was nothing to change."
)
class TransitionApplied:
    tree: MessageTreeState
    transition: StateTransition | None


@strawberry.type(description="Nothing was changed; `reason` and `message` say why.")
class TransitionRejected:
    message_tree_id: UUID
    current_state: State
    requested_state: State | None
    reason: RejectionReason
    message: str


@strawberry.type(description="There is no tree with this id.")
class TreeNotFound:
    message_tree_id: UUID
    message: str


TransitionResult = Annotated[
    TransitionApplied | TransitionRejected | TreeNotFound,
    strawberry.union("TransitionResult"),
]


@strawberry.type(description="The draw; `message` says how many were drawn and why not more.")
class LotteryDrawn:
    lang: str
    drawn: list[MessageTreeState]
    growing_before: int
    growing_after: int
    max_active_trees: int
    message: str


@strawberry.type(description="Nothing was drawn, e.g. a reused idempotency key.")
class LotteryRejected:
    lang: str
    reason: RejectionReason
    message: str


DrawPromptLotteryResult = Annotated[
    LotteryDrawn | LotteryRejected, strawberry.union("DrawPromptLotteryResult")
]


def render_transition(outcome: outcomes.TransitionOutcome) -> TransitionResult:
    """The union member for a domain outcome (unions need the Strawberry types themselves)."""
    match outcome:
        case outcomes.TransitionApplied(tree, entry):
            return TransitionApplied(tree=tree, transition=entry)  # type: ignore[arg-type]
        case outcomes.TransitionRejected(tree_id, current, requested, reason, message):
            return TransitionRejected(
                message_tree_id=tree_id,
                current_state=current,
                requested_state=requested,
                reason=reason,
                message=message,
            )
        case outcomes.TreeNotFound(tree_id, message):
            return TreeNotFound(message_tree_id=tree_id, message=message)
    raise TypeError(outcome)


def render_lottery(outcome: outcomes.LotteryOutcome) -> DrawPromptLotteryResult:
    match outcome:
        case outcomes.LotteryDrawn(lang, drawn, before, after, cap, message):
            return LotteryDrawn(
                lang=lang,
                drawn=list(drawn),  # type: ignore[arg-type]
                growing_before=before,
                growing_after=after,
                max_active_trees=cap,
                message=message,
            )
        case outcomes.LotteryRejected(lang, reason, message):
            return LotteryRejected(lang=lang, reason=reason, message=message)
    raise TypeError(outcome)
