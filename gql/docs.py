"""Markdown for the README, generated from the transition table (never written by hand)."""

from __future__ import annotations

from domain.states import TERMINAL_STATES, State
from domain.transitions import TRANSITION_TABLE, Operation, _AnyBut


def states_table() -> str:
    lines = ["| state | terminal (inactive) | meaning |", "|---|---|---|"]
    for state in State:
        terminal = "yes" if state in TERMINAL_STATES else "no"
        lines.append(f"| `{state.value}` | {terminal} | {state.description} |")
    return "\n".join(lines)


def transitions_table() -> str:
    lines = ["| from | to | least role | mutation | guard |", "|---|---|---|---|---|"]
    for source, target, role, operation, guard in TRANSITION_TABLE:
        if isinstance(source, _AnyBut):
            origin = f"any but `{source.excluded.value}`"
        else:
            origin = f"`{source.value}`"
        via = (
            "`drawPromptLottery` only"
            if operation is Operation.DRAW_PROMPT_LOTTERY
            else f"`{operation.value}`"
        )
        condition = "" if guard is None else guard.value
        lines.append(f"| {origin} | `{target.value}` | {role.name.lower()} | {via} | {condition} |")
    return "\n".join(lines)


HALTING_A_HALTED_TREE = (
    "Halting a tree that is already halted changes nothing: `haltTree` answers `TransitionApplied` "
    "with `transition: null`, the log gains no row, and the new reason is not recorded."
)


def state_machine_markdown() -> str:
    return f"{states_table()}\n\n{transitions_table()}\n\n{HALTING_A_HALTED_TREE}\n"
