"""The benchmark harness's own logic (bench/), without servers or a database: PostGraphile's
answers mapped onto Treegate's, the fallback counter read from /metrics, the targets."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from bench import report
from bench.agreement import Disagreement, as_treegate, check_postgraphile
from bench.run import fallback_samples

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
