"""Inputs and result unions of the mutations. Expected outcomes are union members."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

import strawberry

from domain import outcomes
from resolvers import bulk
from resolvers.bulk import BulkRequest
from schema.enums import RejectionReason, State
from schema.inputs import MessageTreeStateFilter
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


@strawberry.input(
    description=(
        "One transition for every tree the filter matches, up to `limit`, in message_tree_id "
        "order, each as `transitionTree` (or `haltTree`/`resumeTree`, as the table's row "
        "names) would make it."
    )
)
class TransitionTreesInput:
    filter: MessageTreeStateFilter
    to: State
    limit: int = strawberry.field(
        description="Trees to examine, at most: 1 to TREEGATE_MAX_BULK (default 1,000)."
    )
    expected_state: State | None = strawberry.field(
        default=None, description="Only trees in this state move; others: STATE_CHANGED."
    )
    after: str | None = strawberry.field(
        default=None, description="The `endCursor` of a previous call: go on after it."
    )
    dry_run: bool | None = strawberry.field(
        default=False,
        description="Decide as a real call would, now, and change nothing (no log rows, no key).",
    )
    reason: str | None = strawberry.field(default=None, description="Recorded in each log row.")
    idempotency_key: str | None = strawberry.field(
        default=None,
        description=(
            "Retry-safe: the same key and input returns the first call's report, or goes on "
            "from where it stopped."
        ),
    )

    def to_request(self) -> BulkRequest:
        return BulkRequest(
            tree_filter=self.filter.to_domain(),
            target=self.to,
            limit=self.limit,
            expected=self.expected_state,
            after=self.after,
            dry_run=bool(self.dry_run),
            reason=self.reason,
            idempotency_key=self.idempotency_key,
        )


@strawberry.type(description="The trees of a bulk call refused for one reason.")
class BulkRejected:
    reason: RejectionReason
    count: int
    message_tree_ids: list[UUID] = strawberry.field(description="The first 100, in order.")


@strawberry.type(
    description=(
        "What a `transitionTrees` call did (with `dryRun`: would do). Every examined tree is "
        "applied, unchanged or rejected."
    )
)
class BulkTransitionResult:
    operation_id: UUID = strawberry.field(
        description="This call's id, in each of its log rows (`bulkOperationId`)."
    )
    dry_run: bool
    matched: int = strawberry.field(
        description="Trees matching the filter after `after` when the call began."
    )
    examined: int = strawberry.field(description="Trees the call took: at most `limit`.")
    applied: int
    applied_ids: list[UUID] = strawberry.field(description="The first 100 applied, in order.")
    unchanged: int = strawberry.field(
        description="Trees with nothing to change (halting a halted tree)."
    )
    rejected: list[BulkRejected] = strawberry.field(description="By reason, reasons in order.")
    has_next_page: bool = strawberry.field(
        description="More trees matched after the last one examined."
    )
    end_cursor: str | None = strawberry.field(
        description="With `hasNextPage`: pass it as `after` to go on."
    )
    refused: RejectionReason | None = strawberry.field(
        description="The whole call was refused (IDEMPOTENCY_KEY_REUSED): nothing examined."
    )


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


def render_bulk(report: outcomes.BulkReport) -> BulkTransitionResult:
    return BulkTransitionResult(
        operation_id=report.operation_id,
        dry_run=report.dry_run,
        matched=report.matched,
        examined=report.examined,
        applied=report.applied,
        applied_ids=list(report.applied_ids),
        unchanged=report.unchanged,
        rejected=[
            BulkRejected(reason=r.reason, count=r.count, message_tree_ids=list(r.message_tree_ids))
            for r in report.rejected
        ],
        has_next_page=report.has_more,
        end_cursor=bulk.end_cursor(report),
        refused=report.refused,
    )
