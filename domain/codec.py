"""Mutation outcomes to and from JSON, so an idempotency key can return the first result."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.decisions import RejectionReason
from domain.outcomes import (
    BulkRejections,
    BulkReport,
    LotteryDrawn,
    LotteryOutcome,
    LotteryRejected,
    StateTransition,
    TransitionApplied,
    TransitionOutcome,
    TransitionRejected,
    TreeNotFound,
)
from domain.states import State
from domain.transitions import Operation
from domain.values import Message, TreeState

Json = dict[str, Any]


def _date(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _parse_date(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def encode_tree(tree: TreeState) -> Json:
    return {
        "message_tree_id": str(tree.message_tree_id),
        "goal_tree_size": tree.goal_tree_size,
        "max_depth": tree.max_depth,
        "max_children_count": tree.max_children_count,
        "state": tree.state.value,
        "active": tree.active,
        "origin": tree.origin,
        "won_prompt_lottery_date": _date(tree.won_prompt_lottery_date),
        "lang": tree.lang,
    }


def encode_message(message: Message) -> Json:
    """A message's fields (`Message`'s, by name): ids as text, dates in ISO 8601."""
    data: Json = message._asdict()
    for name in ("id", "parent_id", "message_tree_id", "user_id"):
        data[name] = None if data[name] is None else str(data[name])
    data["created_date"] = _date(message.created_date)
    return data


def decode_tree(data: Json) -> TreeState:
    return TreeState(
        message_tree_id=UUID(data["message_tree_id"]),
        goal_tree_size=data["goal_tree_size"],
        max_depth=data["max_depth"],
        max_children_count=data["max_children_count"],
        state=State(data["state"]),
        active=data["active"],
        origin=data["origin"],
        won_prompt_lottery_date=_parse_date(data["won_prompt_lottery_date"]),
        lang=data["lang"],
    )


def encode_transition(entry: StateTransition) -> Json:
    data: Json = {
        "sequence": entry.sequence,
        "message_tree_id": str(entry.message_tree_id),
        "from_state": None if entry.from_state is None else entry.from_state.value,
        "to_state": entry.to_state.value,
        "operation": entry.operation.value,
        "actor": entry.actor,
        "reason": entry.reason,
        "at": entry.at.isoformat(),
    }
    if entry.bulk_operation_id is not None:
        data["bulk_operation_id"] = str(entry.bulk_operation_id)
    return data


def decode_transition(data: Json) -> StateTransition:
    at = _parse_date(data["at"])
    assert at is not None
    bulk = data.get("bulk_operation_id")  # only a bulk move's row has one
    return StateTransition(
        sequence=data["sequence"],
        message_tree_id=UUID(data["message_tree_id"]),
        from_state=None if data["from_state"] is None else State(data["from_state"]),
        to_state=State(data["to_state"]),
        operation=Operation(data["operation"]),
        actor=data["actor"],
        reason=data["reason"],
        at=at,
        bulk_operation_id=None if bulk is None else UUID(bulk),
    )


def encode_outcome(outcome: TransitionOutcome | LotteryOutcome) -> Json:
    match outcome:
        case TransitionApplied(tree, entry):
            return {
                "kind": "applied",
                "tree": encode_tree(tree),
                "transition": None if entry is None else encode_transition(entry),
            }
        case TransitionRejected(tree_id, current, requested, reason, message):
            return {
                "kind": "rejected",
                "message_tree_id": str(tree_id),
                "current_state": current.value,
                "requested_state": None if requested is None else requested.value,
                "reason": reason.name,
                "message": message,
            }
        case TreeNotFound(tree_id, message):
            return {"kind": "not_found", "message_tree_id": str(tree_id), "message": message}
        case LotteryDrawn(lang, drawn, before, after, cap, message):
            return {
                "kind": "drawn",
                "lang": lang,
                "drawn": [encode_tree(t) for t in drawn],
                "growing_before": before,
                "growing_after": after,
                "max_active_trees": cap,
                "message": message,
            }
        case LotteryRejected(lang, reason, message):
            return {
                "kind": "lottery_rejected",
                "lang": lang,
                "reason": reason.name,
                "message": message,
            }
    raise TypeError(f"cannot encode {outcome!r}")


def decode_outcome(data: Json) -> TransitionOutcome | LotteryOutcome:
    kind = data["kind"]
    if kind == "applied":
        entry = data["transition"]
        return TransitionApplied(
            decode_tree(data["tree"]), None if entry is None else decode_transition(entry)
        )
    if kind == "rejected":
        requested = data["requested_state"]
        return TransitionRejected(
            message_tree_id=UUID(data["message_tree_id"]),
            current_state=State(data["current_state"]),
            requested_state=None if requested is None else State(requested),
            reason=RejectionReason[data["reason"]],
            message=data["message"],
        )
    if kind == "not_found":
        return TreeNotFound(UUID(data["message_tree_id"]), data["message"])
    if kind == "drawn":
        return LotteryDrawn(
            lang=data["lang"],
            drawn=tuple(decode_tree(t) for t in data["drawn"]),
            growing_before=data["growing_before"],
            growing_after=data["growing_after"],
            max_active_trees=data["max_active_trees"],
            message=data["message"],
        )
    if kind == "lottery_rejected":
        return LotteryRejected(data["lang"], RejectionReason[data["reason"]], data["message"])
    raise ValueError(f"unknown outcome kind {kind!r}")


def encode_bulk(report: BulkReport) -> Json:
    return {
        "operation_id": str(report.operation_id),
        "dry_run": report.dry_run,
        "matched": report.matched,
        "examined": report.examined,
        "applied": report.applied,
        "applied_ids": [str(i) for i in report.applied_ids],
        "unchanged": report.unchanged,
        "rejected": [
            {
                "reason": r.reason.name,
                "count": r.count,
                "message_tree_ids": [str(i) for i in r.message_tree_ids],
            }
            for r in report.rejected
        ],
        "last_examined": None if report.last_examined is None else str(report.last_examined),
        "has_more": report.has_more,
        "refused": None if report.refused is None else report.refused.name,
    }


def decode_bulk(data: Json) -> BulkReport:
    last = data["last_examined"]
    refused = data["refused"]
    return BulkReport(
        operation_id=UUID(data["operation_id"]),
        dry_run=data["dry_run"],
        matched=data["matched"],
        examined=data["examined"],
        applied=data["applied"],
        applied_ids=tuple(UUID(i) for i in data["applied_ids"]),
        unchanged=data["unchanged"],
        rejected=tuple(
            BulkRejections(
                RejectionReason[r["reason"]],
                r["count"],
                tuple(UUID(i) for i in r["message_tree_ids"]),
            )
            for r in data["rejected"]
        ),
        last_examined=None if last is None else UUID(last),
        has_more=data["has_more"],
        refused=None if refused is None else RejectionReason[refused],
    )
