"""Tree shapes computed in memory: orders, ties, hidden subtrees, bad data."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.message_trees import MessageTree, sibling_key
from domain.values import Message

T0 = datetime(2023, 1, 1, tzinfo=UTC)


def m(
    name: str,
    parent: Message | None,
    minute: int,
    *,
    rank: int | None = None,
    review: bool | None = True,
    deleted: bool = False,
    tree: uuid.UUID | None = None,
) -> Message:
    ident = uuid.uuid5(uuid.NAMESPACE_DNS, name)
    return Message(
        id=ident,
        parent_id=None if parent is None else parent.id,
        message_tree_id=tree or (ident if parent is None else parent.message_tree_id),
        user_id=None,
        role="prompter" if parent is None else "assistant",
        lang="en",
        text=name,
        created_date=T0 + timedelta(minutes=minute),
        depth=0,
        deleted=deleted,
        review_count=3,
        review_result=review,
        rank=rank,
        synthetic=False,
        model_name=None,
    )


def texts(found: list[Message]) -> list[str | None]:
    return [x.text for x in found]


def test_siblings_by_rank_then_unranked_by_date_then_id() -> None:
    root = m("root", None, 0)
    a = m("a", root, 5, rank=1)
    b = m("b", root, 9, rank=0)
    c = m("c", root, 1)
    d = m("d", root, 2)
    assert texts(sorted([a, b, c, d], key=sibling_key)) == ["b", "a", "c", "d"]


def test_equally_long_conversations_end_in_the_earliest_leaf() -> None:
    root = m("root", None, 0)
    left = m("left", root, 1, rank=0)
    right = m("right", root, 2, rank=1)
    left_leaf = m("left-leaf", left, 8)
    right_leaf = m("right-leaf", right, 3)
    tree = MessageTree(root.id, (root, left, right, left_leaf, right_leaf))
    assert texts(tree.longest_conversation()) == ["root", "right", "right-leaf"]


def test_the_earliest_of_equally_branching_messages_has_the_most_children() -> None:
    root = m("root", None, 0)
    one = m("one", root, 1)
    two = m("two", root, 2)
    kids = [m(f"k{i}", one if i < 2 else two, 3 + i) for i in range(4)]
    tree = MessageTree(root.id, (root, one, two, *kids))
    best = tree.message_with_most_children()
    assert best is not None
    assert best.text == "root"
    # Only accepted, non-deleted children count, and only accepted messages compete.
    rejected = m("rejected-root", None, 0, review=False)
    assert MessageTree(rejected.id, (rejected,)).message_with_most_children() is None


def test_a_hidden_message_hides_its_subtree_and_conversation_follows_parents() -> None:
    root = m("root", None, 0)
    spam = m("spam", root, 1, review=False)
    under = m("under", spam, 2)
    gone = m("gone", root, 3, deleted=True)
    tree = MessageTree(root.id, (root, spam, under, gone))
    kept = tree.messages_in_order(include_deleted=False, include_spam=False)
    assert texts(kept) == ["root"]
    everything = tree.messages_in_order(include_deleted=True, include_spam=True)
    assert texts(everything) == ["root", "spam", "under", "gone"]
    assert texts(tree.conversation(under.id)) == ["root", "spam", "under"]
    assert tree.conversation(uuid.uuid4()) == []


def test_a_parent_cycle_in_bad_data_ends() -> None:
    root = m("root", None, 0)
    a = m("a", root, 1)
    looped = a._replace(parent_id=a.id)
    tree = MessageTree(root.id, (root, looped))
    assert texts(tree.conversation(looped.id)) == ["a"]
    assert texts(tree.messages_in_order(include_deleted=False, include_spam=True)) == ["root"]
