"""Q5's invariants, checked from the database after each run of concurrent writers.

From a snapshot before the run (every tree's state and language, and the log's last sequence),
the log rows the run added, and a snapshot after it:

- every log row starts where the tree was (its `from_state` is the tree's state at that point of
  the log, replayed in sequence order, which is commit order): no lost or doubled update;
- replaying the rows over the first snapshot gives the second exactly: every state change has
  its log row and every log row its state change ("log rows == state changes");
- no tree is drawn twice;
- replayed in commit order, no draw leaves its language with more than `cap` growing trees.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from bench.database import LogRow, Snapshot

DRAW = "drawPromptLottery"
GROWING = "growing"
MAX_DETAILS = 10


@dataclass(slots=True)
class Q5Check:
    log_rows: int = 0
    draws: int = 0
    """Trees drawn (log rows of drawPromptLottery)."""
    other_changes: int = 0
    violations: int = 0
    details: list[str] = field(default_factory=list)

    def violation(self, text: str) -> None:
        self.violations += 1
        if len(self.details) < MAX_DETAILS:
            self.details.append(text)


def check(before: Snapshot, after: Snapshot, rows: list[LogRow], cap: int) -> Q5Check:
    result = Q5Check(log_rows=len(rows))
    states = {tree: state for tree, (state, _lang) in before.trees.items()}
    langs = {tree: lang for tree, (_state, lang) in after.trees.items()}
    growing = Counter(lang for state, lang in before.trees.values() if state == GROWING)
    draws_per_tree: Counter[str] = Counter()
    for row in rows:
        current = states.get(row.tree_id)
        if current != row.from_state:
            result.violation(
                f"log row {row.sequence}: {row.from_state} -> {row.to_state} "
                f"but tree {row.tree_id} was {current}"
            )
        states[row.tree_id] = row.to_state
        lang = langs.get(row.tree_id, "?")
        growing[lang] += (row.to_state == GROWING) - (current == GROWING)
        if row.operation == DRAW:
            result.draws += 1
            draws_per_tree[row.tree_id] += 1
            if draws_per_tree[row.tree_id] == 2:
                result.violation(f"tree {row.tree_id} drawn twice (log row {row.sequence})")
            if growing[lang] > cap:
                result.violation(
                    f"log row {row.sequence}: the draw left {lang} with {growing[lang]} "
                    f"growing trees (cap {cap})"
                )
        else:
            result.other_changes += 1
    unexplained = [
        tree for tree, (state, _lang) in after.trees.items() if states.get(tree) != state
    ]
    for tree in unexplained:
        result.violation(
            f"tree {tree} is {after.trees[tree][0]}, but its log says {states.get(tree)}"
        )
    if after.sequence != (rows[-1].sequence if rows else before.sequence):
        result.violation("the log changed while it was being read")
    return result
