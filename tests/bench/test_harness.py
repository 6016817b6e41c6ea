"""The benchmark harness's own logic (bench/), without servers or a database: PostGraphile's
answers mapped onto Treegate's, the fallback counter read from /metrics, the targets, Q6's
documents, the depth-first order the peer's and the ceiling's rows are put in, and the table."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from graphql import FieldNode, OperationDefinitionNode, build_schema, parse, print_ast, validate

from bench import documents, report
from bench.agreement import Disagreement, as_treegate, check_postgraphile, tree_messages
from bench.raw_server import depth_first
from bench.run import PEER_QUERIES, READ_QUERIES, TITLES, fallback_samples, parse_args
from domain.message_trees import MessageTree
from domain.values import Message
from tests.message_trees import KNOWN, T0, Row, _depths

TREE_ID = "000c2622-267a-4f67-ad11-8de7dbbf27f0"


def _treegate_node(**extra: Any) -> dict[str, Any]:
    return {
        "messageTreeId": TREE_ID,
        "goalTreeSize": 12,
        "maxDepth": 3,
        "maxChildrenCount": 3,
        "state": "READY_FOR_EXPORT",
        "active": False,
        "origin": "oasst2-demo",
        "wonPromptLotteryDate": "2023-09-13T00:12:09+00:00",
        "lang": "es",
        **extra,
    }


def _postgraphile_node(**extra: Any) -> dict[str, Any]:
    return {
        **_treegate_node(),
        "state": "ready_for_export",
        "wonPromptLotteryDate": "2023-09-13T00:12:09.000000+00:00",
        **extra,
    }


def test_a_postgraphile_page_with_roots_maps_onto_treegate_s() -> None:
    payload = {"payload": {"text": "Escribe un poema."}, "payload_type": "MessagePayload"}
    postgraphile = {
        "data": {
            "allMessageTreeStates": {
                "nodes": [
                    _postgraphile_node(messageByMessageTreeId={"payload": payload, "lang": "es"})
                ],
                "totalCount": 13749,
            }
        }
    }
    treegate = {
        "data": {
            "messageTreeStates": {
                "nodes": [_treegate_node(rootMessage={"text": "Escribe un poema.", "lang": "es"})],
                "totalCount": 13749,
            }
        }
    }
    check_postgraphile("Q4", treegate, postgraphile)

    different = copy.deepcopy(postgraphile)
    different["data"]["allMessageTreeStates"]["totalCount"] = 13748
    with pytest.raises(Disagreement, match="totalCount"):
        check_postgraphile("Q4", treegate, different)


def test_dates_compare_as_instants_and_states_by_their_enum_name() -> None:
    treegate = {"data": {"messageTreeState": _treegate_node()}}
    later = _postgraphile_node(wonPromptLotteryDate="2023-09-13T00:12:09.000001+00:00")
    with pytest.raises(Disagreement, match="wonPromptLotteryDate"):
        check_postgraphile("Q2", treegate, {"data": {"messageTreeStateByMessageTreeId": later}})
    elsewhere = _postgraphile_node(wonPromptLotteryDate="2023-09-13T02:12:09+02:00")
    check_postgraphile("Q2", treegate, {"data": {"messageTreeStateByMessageTreeId": elsewhere}})
    other_state = _postgraphile_node(state="growing")
    with pytest.raises(Disagreement, match="state"):
        check_postgraphile(
            "Q2", treegate, {"data": {"messageTreeStateByMessageTreeId": other_state}}
        )


def test_a_missing_tree_is_null_on_both() -> None:
    assert as_treegate("Q2", {"messageTreeStateByMessageTreeId": None}) == {
        "messageTreeState": None
    }
    with pytest.raises(Disagreement):
        as_treegate("Q1", {"allMessageTreeStates": {"nodes": [{"messageTreeId": TREE_ID}]}})


def test_the_fallback_counter_is_summed_by_reason_and_absent_is_none() -> None:
    assert fallback_samples("treegate_requests_total 3.0\n") is None
    declared = (
        "# HELP treegate_compiled_fallbacks_total Read documents answered off the compiled lane.\n"
        "# TYPE treegate_compiled_fallbacks_total counter\n"
    )
    assert fallback_samples(declared) == {}
    text = declared + (
        'treegate_compiled_fallbacks_total{reason="variables"} 2.0\n'
        'treegate_compiled_fallbacks_created{reason="variables"} 1.7e+09\n'
        'treegate_compiled_fallbacks_total{reason="unknown_document"} 1.0\n'
    )
    assert fallback_samples(text) == {"variables": 2.0, "unknown_document": 1.0}


def _stats(rps: float, p99: float, rss: float = 90.0) -> dict[str, Any]:
    return {"rps": rps, "p50_ms": 10.0, "p99_ms": p99, "peak_rss_mib": rss, "errors": 0}


def test_targets_use_the_faster_raw_server_and_postgraphile() -> None:
    servers = {
        "treegate": _stats(1300, 40),
        "treegate-nocache": _stats(1000, 60),
        "postgraphile": _stats(900, 50, rss=200),
        "raw-10": _stats(1500, 20),
        "raw-32": _stats(1400, 20),
    }
    entries = []
    for query in ("Q1", "Q2", "Q4"):
        entry: dict[str, Any] = {
            "id": query,
            "title": query,
            "trees": 100,
            "servers": servers,
            "verification": {},
            "raw_best": report.raw_best(servers),
        }
        entry["ratios"] = report.ratios(entry)
        entries.append(entry)
    assert entries[0]["raw_best"] == "raw-10"
    assert entries[0]["ratios"]["treegate-nocache"] == {"postgraphile": 1.111, "raw": 0.667}
    result: dict[str, Any] = {
        "config": {"trees": 100, "scale": None},
        "queries": entries,
        "polling": [
            {"pollers": 1, "executions_per_s": 1.0, "db_transactions_per_s": 3.0},
            {"pollers": 200, "executions_per_s": 1.0, "db_transactions_per_s": 12.0},
        ],
    }
    verdicts = {t["name"]: t["pass"] for t in report.targets(result)}
    assert verdicts["Q1 treegate-nocache/postgraphile req/s >= 1"] is True
    assert verdicts["Q1 treegate-nocache/postgraphile p99 <= 1.5"] is True
    assert verdicts["Q2 treegate-nocache/raw-best req/s >= 0.7"] is False
    assert verdicts["Q1 treegate/postgraphile req/s >= 1.3"] is True
    assert verdicts["Q5 treegate/raw-best draws/s >= 0.8"] is None
    assert verdicts["peak RSS of every Treegate configuration <= 150 MiB"] is True
    assert verdicts["POLL executions/s flat, 1-200 pollers (<= 1.5x + 2/s)"] is True
    assert verdicts["POLL db transactions/s flat, 1-200 pollers (<= 1.5x + 2/s)"] is False


# --- Q6: one tree's messages -------------------------------------------------------------------

SDL = Path(__file__).resolve().parents[2] / "schema" / "schema.graphql"
Q6_FIELDS = ["id", "parentId", "role", "text", "depth", "rank"]


def _selection(node: Any) -> dict[str, Any]:
    """A document's selections as nested dicts: field name to its own selections."""
    found: dict[str, Any] = {}
    for child in node.selection_set.selections if node.selection_set else ():
        assert isinstance(child, FieldNode)
        found[child.name.value] = _selection(child)
    return found


def test_q6_asks_treegate_for_a_tree_s_messages_and_postgraphile_for_the_same_rows() -> None:
    assert "Q6" in READ_QUERIES
    assert "Q6" in PEER_QUERIES
    assert "Q6" in TITLES
    assert "Q6" in parse_args(["--no-postgraphile"]).queries
    treegate = parse(documents.load("Q6"))
    assert validate(build_schema(SDL.read_text()), treegate) == []
    operation = treegate.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    assert _selection(operation) == {
        "messageTreeState": {"messages": {name: {} for name in Q6_FIELDS}}
    }
    peer = parse(documents.load("Q6", "postgraphile"))
    peer_operation = peer.definitions[0]
    assert isinstance(peer_operation, OperationDefinitionNode)
    assert _selection(peer_operation) == {
        "messageTreeStateByMessageTreeId": {"messageTreeId": {}},
        "allMessages": {
            "nodes": {
                name: {}
                for name in ("rowId", "parentId", "role", "payload", "depth", "rank", "deleted")
            }
        },
    }
    messages = peer_operation.selection_set.selections[1]
    assert isinstance(messages, FieldNode)
    arguments = {a.name.value: print_ast(a.value) for a in messages.arguments or ()}
    # The tree's rows, in creation order then id: the stable sort by rank relies on it.
    assert arguments == {
        "condition": "{ messageTreeId: $id }",
        "orderBy": "[CREATED_DATE_ASC, PRIMARY_KEY_ASC]",
    }
    for dialect in ("treegate", "postgraphile"):
        body = json.dumps(documents.request_body("Q6", {"id": "@ID@"}, dialect))
        assert body.count("@ID@") == 1  # graphql.lua puts each request's id in its one place
        assert documents.operation_name(documents.load("Q6", dialect)) == "Q6TreeMessages"


def _messages(rows: tuple[Row, ...]) -> tuple[uuid.UUID, list[Message]]:
    ids = {r.name: uuid.UUID(int=i + 1) for i, r in enumerate(rows)}
    ids["root"] = uuid.UUID(int=2**127)  # the root's id sorts after its replies'
    depths = _depths(rows)
    return ids["root"], [
        Message(
            id=ids[r.name],
            parent_id=None if r.parent is None else ids[r.parent],
            message_tree_id=ids["root"],
            user_id=None,
            role=r.role,
            lang="en",
            text=r.text,
            created_date=T0 + timedelta(minutes=r.minute),
            depth=depths[r.name],
            deleted=r.deleted,
            review_count=3,
            review_result=r.review_result,
            rank=r.rank,
            synthetic=False,
            model_name=None,
        )
        for r in rows
    ]


def _expected(tree_id: uuid.UUID, messages: list[Message]) -> list[dict[str, Any]]:
    """Treegate's answer, from the domain's own order (`MessageTreeState.messages`)."""
    tree = MessageTree(tree_id, tuple(messages))
    return [
        {
            "id": str(m.id),
            "parentId": None if m.parent_id is None else str(m.parent_id),
            "role": m.role,
            "text": m.text,
            "depth": m.depth,
            "rank": m.rank,
        }
        for m in tree.messages_in_order(include_deleted=False, include_spam=True)
    ]


def _creation_order(messages: list[Message]) -> list[Message]:
    return sorted(messages, key=lambda m: (m.created_date, m.id))


def _postgraphile_rows(messages: list[Message]) -> list[dict[str, Any]]:
    return [
        {
            "rowId": str(m.id),
            "parentId": None if m.parent_id is None else str(m.parent_id),
            "role": m.role,
            "payload": {"payload": {"text": m.text}, "payload_type": "MessagePayload"},
            "depth": m.depth,
            "rank": m.rank,
            "deleted": m.deleted,
        }
        for m in messages
    ]


def _raw_rows(messages: list[Message]) -> list[tuple[Any, ...]]:
    return [
        (
            str(m.id),
            None if m.parent_id is None else str(m.parent_id),
            m.role,
            m.text,
            m.depth,
            m.rank,
            m.deleted,
        )
        for m in messages
    ]


# Ranks that tie and that differ from creation order, a deleted reply; then a deleted prompt
# with a reply below it (hidden with it).
SHAPES = (KNOWN, tuple(replace(r, deleted=True) if r.name == "p_spam" else r for r in KNOWN))


@pytest.mark.parametrize("rows", SHAPES, ids=["known", "deleted-subtree"])
def test_the_peer_s_and_the_ceiling_s_rows_are_put_in_treegate_s_order(
    rows: tuple[Row, ...],
) -> None:
    tree_id, messages = _messages(rows)
    expected = _expected(tree_id, messages)
    assert len(expected) == (9 if rows is KNOWN else 7)
    ordered = _creation_order(messages)
    assert tree_messages(str(tree_id), _postgraphile_rows(ordered)) == expected
    assert depth_first(str(tree_id), _raw_rows(ordered)) == expected
    # The tie between a_tie_early and a_tie_late is broken by the order the rows come in.
    reverse = ordered[::-1]
    assert tree_messages(str(tree_id), _postgraphile_rows(reverse)) != expected
    assert depth_first(str(tree_id), _raw_rows(reverse)) != expected


def test_q6_agreement_maps_postgraphile_s_rows_and_catches_a_difference() -> None:
    tree_id, messages = _messages(KNOWN)
    expected = _expected(tree_id, messages)
    treegate = {"data": {"messageTreeState": {"messages": expected}}}
    rows = _postgraphile_rows(_creation_order(messages))

    def peer(nodes: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "data": {
                "messageTreeStateByMessageTreeId": {"messageTreeId": str(tree_id)},
                "allMessages": {"nodes": nodes},
            }
        }

    check_postgraphile("Q6", treegate, peer(rows))
    other_text = copy.deepcopy(rows)
    other_text[3]["payload"]["payload"]["text"] = "changed"
    with pytest.raises(Disagreement, match=r"messages\[\d\]\.text"):
        check_postgraphile("Q6", treegate, peer(other_text))
    other_rank = copy.deepcopy(rows)
    for row in other_rank:
        row["rank"] = {0: 1, 1: 0}.get(row["rank"], row["rank"])  # a_best and a_second swap
    with pytest.raises(Disagreement, match=r"messages\[1\]"):
        check_postgraphile("Q6", treegate, peer(other_rank))
    with pytest.raises(Disagreement, match="9 items != 8"):
        check_postgraphile("Q6", treegate, peer(rows[:-1]))  # the last reply missing
    with pytest.raises(Disagreement, match="deleted"):
        check_postgraphile(
            "Q6", treegate, peer([{k: v for k, v in rows[0].items() if k != "deleted"}])
        )
    absent: dict[str, Any] = {"messageTreeStateByMessageTreeId": None, "allMessages": {"nodes": []}}
    assert as_treegate("Q6", absent) == {"messageTreeState": None}
    check_postgraphile("Q6", {"data": {"messageTreeState": None}}, {"data": absent})


def _result(queries: list[dict[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "date": "2026-12-06 12:00 UTC",
        "label": "",
        "treegate": {"root": "/work/main", "revision": "abc1234"},
        "machine": {"cpu": "a CPU", "cores": 2, "memory_gib": 4.0, "kernel": "6.1", "busy": []},
        "versions": {"python": "3.12"},
        "config": {
            "trees": 100,
            "scale": None,
            "threads": 2,
            "connections": 32,
            "q5_connections": 50,
            "duration_s": 10,
            "warmup_s": 3,
            "repeat": 3,
        },
        "servers": {},
        "databases": {},
        "polling": [],
        "queries": queries,
    }
    result["targets"] = report.targets(result)
    return result


def test_q6_has_its_row_in_the_table_with_p99_beside_req_s() -> None:
    servers = {
        "treegate": _stats(1111.1, 21.5),
        "treegate-nocache": _stats(1234.5, 22.25),
        "postgraphile": _stats(987.6, 41.0, rss=250),
        "raw-10": _stats(2469.0, 15.75),
        "treegate-uncompiled": _stats(617.3, 55.5),
    }
    entry: dict[str, Any] = {
        "id": "Q6",
        "title": TITLES["Q6"],
        "trees": 100,
        "servers": servers,
        "verification": {
            "treegate-nocache": {"how": "bytes"},
            "postgraphile": {"how": "mapped"},
            "raw-10": {"how": "bytes"},
        },
        "raw_best": report.raw_best(servers),
    }
    entry["ratios"] = report.ratios(entry)
    assert entry["ratios"]["treegate-nocache"] == {"postgraphile": 1.25, "raw": 0.5}
    table = report.render(_result([entry]))
    lines = [line for line in table.splitlines() if "1,234.5" in line]
    assert len(lines) == 1, table
    cells = lines[0].split()
    assert cells[cells.index("1,234.5") + 2] == "22.25"  # req/s, p50, p99
    assert lines[0].split()[-3:] == ["1.25x", "0.50x", "bytes"]
    first = next(line for line in table.splitlines() if line.startswith("Q6 "))
    assert "one tree's messages" in first
    assert first.split()[-6:-3] == ["1,111.1", "10.00", "21.50"]  # treegate: req/s, p50, p99
    uncompiled = next(line for line in table.splitlines() if "treegate-uncompiled" in line)
    assert uncompiled.split()[1:4] == ["617.3", "10.00", "55.50"]
    # Q6 has no ratio target of its own; its Treegate rows count for the memory target.
    verdicts = {t["name"]: t for t in report.targets(_result([entry]))}
    assert not any(name.startswith("Q6") for name in verdicts)
    entry["servers"]["treegate-uncompiled"]["peak_rss_mib"] = 151.0
    memory = next(t for t in report.targets(_result([entry])) if t["name"].startswith("peak RSS"))
    assert memory["value"] == "151 (treegate-uncompiled)"
    assert memory["pass"] is False
