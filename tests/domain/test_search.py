"""The web-search syntax, parsed once for both databases."""

from __future__ import annotations

import pytest

from domain.errors import InvalidInput
from domain.search import (
    MAX_SEARCH_LENGTH,
    SIMPLE_CONFIG,
    Term,
    fts5_query,
    parse_search,
    text_search_configs,
)


def test_words_phrases_alternatives_and_exclusions() -> None:
    search = parse_search('sort "in place" -bubble or Sorted')
    assert search.parts == (
        (Term(("sort",)), Term(("in", "place")), Term(("bubble",), excluded=True)),
        (Term(("Sorted",)),),
    )
    assert fts5_query(search) == '("sort" AND "in place" NOT "bubble") OR ("Sorted")'


def test_punctuation_is_dropped_and_words_inside_it_kept() -> None:
    assert fts5_query(parse_search('col:python NEAR(a "b')) == '("col python" AND "NEAR a" AND "b")'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no word"),
        ("or OR or", "no word"),
        ("-cat", "not excluded"),
        ("dog or -cat", "not excluded"),
        ("x" * (MAX_SEARCH_LENGTH + 1), "longer than"),
        ("a\x00b", "NUL"),
    ],
)
def test_what_cannot_be_a_search(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        parse_search(text, "filter.search")
    assert raised.value.argument == "filter.search"
    assert message in raised.value.message


def test_configurations_follow_open_assistants_languages() -> None:
    assert text_search_configs(["en", "de", "xx"]) == ("english", "german", SIMPLE_CONFIG)
    everything = text_search_configs(None)
    assert {"english", SIMPLE_CONFIG} <= set(everything)
    assert len(everything) == len(set(everything))
