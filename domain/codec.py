"""Mutation outcomes to and from JSON, so an idempotency key can return the first result."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from domain.decisions import RejectionReason
from domain.outcomes import (
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
    return {
        "sequence": entry.sequence,
        "message_tree_id": str(entry.message_tree_id),
        "from_state": None if entry.from_state is None else entry.from_state.value,
        "to_state": entry.to_state.value,
        "operation": entry.operation.value,
        "actor": entry.actor,
        "reason": entry.reason,
        "at": entry.at.isoformat(),
    }


def decode_transition(data: Json) -> StateTransition:
    at = _parse_date(data["at"])
    assert at is not None
    return StateTransition(
        sequence=data["sequence"],
        message_tree_id=UUID(data["message_tree_id"]),
        from_state=None if data["from_state"] is None else State(data["from_state"]),
        to_state=State(data["to_state"]),
        operation=Operation(data["operation"]),
        actor=data["actor"],
        reason=data["reason"],
        at=at,
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
