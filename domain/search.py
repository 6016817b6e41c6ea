"""Full-text search text: one syntax on both databases, checked before either sees it.

A search is written in PostgreSQL's *websearch* syntax (what `websearch_to_tsquery` reads):

- words are all required: `sort list` finds messages with both;
- `"a quoted phrase"` requires its words next to each other, in that order;
- `or` between two parts requires either: `python or rust`;
- `-word` (or `-"a phrase"`) excludes messages that have it.

Punctuation is ignored, as both databases' tokenizers ignore it. A search is refused
(BAD_USER_INPUT) when it is longer than `MAX_SEARCH_LENGTH`, holds a NUL, has no word at all,
or has a part made only of exclusions (`-cat` alone would match almost every message). On
PostgreSQL the text is handed to `websearch_to_tsquery` as it is; on SQLite `fts5_query`
renders the parsed search as an FTS5 query in which every word is quoted, so no text a client
sends can be read as FTS5 syntax.

Which text-search configuration (stemming, stop words) applies on PostgreSQL is chosen by the
message's language, with Open-Assistant's own mapping (`TEXT_SEARCH_CONFIGS`; `simple`, no
stemming, for the others). SQLite's FTS5 index uses the Porter stemmer (English) over Unicode
words with diacritics removed, for every language.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from domain.errors import InvalidInput, check_text

MAX_SEARCH_LENGTH = 256

TEXT_SEARCH_CONFIGS: dict[str, str] = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "ne": "nepali",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
"""Open-Assistant's language code to PostgreSQL text-search configuration (its
`db_lang_to_postgres_ts_lang`); any other language uses `SIMPLE_CONFIG`."""
SIMPLE_CONFIG = "simple"


def text_search_config(lang: str) -> str:
    return TEXT_SEARCH_CONFIGS.get(lang, SIMPLE_CONFIG)


def text_search_configs(langs: Iterable[str] | None) -> tuple[str, ...]:
    """The configurations a search over these languages (None: every language) must use."""
    if langs is None:
        return tuple(sorted({*TEXT_SEARCH_CONFIGS.values(), SIMPLE_CONFIG}))
    return tuple(sorted({text_search_config(lang) for lang in langs}))


@dataclass(frozen=True, slots=True)
class Term:
    words: tuple[str, ...]
    """One word, or the words of a phrase."""
    excluded: bool = False


@dataclass(frozen=True, slots=True)
class Search:
    """A parsed search: any one of its parts matches; a part is terms all of which must."""

    text: str
    parts: tuple[tuple[Term, ...], ...]


_TOKEN = re.compile(r'-?"[^"]*"?|[^\s"]+')
_WORD = re.compile(r"\w+")


def parse_search(text: str, argument: str = "search") -> Search:
    """The search in `text`; BAD_USER_INPUT (naming `argument`) if it cannot be one."""
    check_text(argument, text)
    if len(text) > MAX_SEARCH_LENGTH:
        raise InvalidInput(argument, f"`{argument}` is longer than {MAX_SEARCH_LENGTH} characters")
    parts: list[list[Term]] = [[]]
    for token in _TOKEN.findall(text):
        if token.lower() == "or":
            if parts[-1]:
                parts.append([])
            continue
        excluded = token.startswith("-")
        words = tuple(_WORD.findall(token))
        if words:
            parts[-1].append(Term(words, excluded))
    kept = [tuple(part) for part in parts if part]
    if not kept:
        raise InvalidInput(argument, f"`{argument}` has no word to search for")
    for part in kept:
        if all(term.excluded for term in part):
            raise InvalidInput(
                argument,
                f"`{argument}`: each part needs a word that is not excluded with `-`",
            )
    return Search(text, tuple(kept))


def _fts5_term(term: Term) -> str:
    # Words are \w+ only: no double quote to escape.
    return '"' + " ".join(term.words) + '"'


def fts5_query(search: Search) -> str:
    """The search as an SQLite FTS5 query: every word quoted, parts joined by OR."""
    rendered = []
    for part in search.parts:
        required = " AND ".join(_fts5_term(t) for t in part if not t.excluded)
        excluded = "".join(f" NOT {_fts5_term(t)}" for t in part if t.excluded)
        rendered.append(f"({required}{excluded})")
    return " OR ".join(rendered)
