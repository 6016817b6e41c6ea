"""Full-text search over messages' text: a tsvector on PostgreSQL, FTS5 on SQLite.

PostgreSQL: the `message.search_vector` column and its GIN index `idx_search_vector`, named
as Open-Assistant names them. On an Open-Assistant database they are Open-Assistant's (filled
by its periodic job) and Treegate only reads them; on Treegate's own table, migration 0004 adds
the column as a generated one, computed exactly as Open-Assistant's job computes it (the text
under the message's language's configuration), so it is always in step with every write.

SQLite: an FTS5 table, `treegate_message_search`, whose row ids are kept in
`treegate_message_search_key` (a message's own row id may change on VACUUM; these do not),
kept in step with `message` by triggers: every insert, import, edit of the payload and delete.

The search syntax and its checks are `domain.search`'s, shared by both.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import TextClause, bindparam, text

from domain.search import SIMPLE_CONFIG, TEXT_SEARCH_CONFIGS, Search, fts5_query

SEARCH_VECTOR = "search_vector"
SEARCH_INDEX = "idx_search_vector"
FTS_TABLE = "treegate_message_search"
FTS_KEYS = "treegate_message_search_key"
_TEXT = "json_extract({row}.payload, '$.payload.text')"


def include_object(obj: Any, name: str | None, type_: str, _reflected: bool, _other: Any) -> bool:
    """For Alembic's comparison with `db.tables`: the search objects are not in the tables'
    metadata (the column exists on PostgreSQL only, the FTS5 tables on SQLite only)."""
    if type_ == "column":
        return name != SEARCH_VECTOR
    if type_ == "index":
        return name != SEARCH_INDEX
    if type_ == "table":
        return not (name or "").startswith(FTS_TABLE)
    return True


def pg_vector_sql() -> str:
    """The tsvector of a row's text under its language's configuration (Open-Assistant's)."""
    cases = " ".join(
        f"WHEN '{lang}' THEN '{config}'::regconfig" for lang, config in TEXT_SEARCH_CONFIGS.items()
    )
    config = f"CASE lang {cases} ELSE '{SIMPLE_CONFIG}'::regconfig END"
    return f"to_tsvector({config}, coalesce(payload -> 'payload' ->> 'text', ''))"


def sqlite_statements() -> list[str]:
    """The FTS5 table, its key table, the triggers that keep them in step, and the backfill."""
    insert = (
        f"INSERT INTO {FTS_KEYS} (message_id) VALUES (new.id); "
        f"INSERT INTO {FTS_TABLE} (rowid, text) VALUES "
        f"(last_insert_rowid(), coalesce({_TEXT.format(row='new')}, ''));"
    )
    delete = (
        f"DELETE FROM {FTS_TABLE} WHERE rowid = "
        f"(SELECT seq FROM {FTS_KEYS} WHERE message_id = old.id); "
        f"DELETE FROM {FTS_KEYS} WHERE message_id = old.id;"
    )
    return [
        f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5("
        "text, tokenize = 'porter unicode61 remove_diacritics 2')",
        f"CREATE TABLE {FTS_KEYS} (seq INTEGER PRIMARY KEY, message_id CHAR(32) NOT NULL UNIQUE)",
        f"CREATE TRIGGER {FTS_TABLE}_insert AFTER INSERT ON message BEGIN {insert} END",
        f"CREATE TRIGGER {FTS_TABLE}_delete AFTER DELETE ON message BEGIN {delete} END",
        f"CREATE TRIGGER {FTS_TABLE}_update AFTER UPDATE OF id, payload ON message "
        f"BEGIN {delete} {insert} END",
        f"INSERT INTO {FTS_KEYS} (message_id) SELECT id FROM message",
        f"INSERT INTO {FTS_TABLE} (rowid, text) SELECT k.seq, "
        f"coalesce({_TEXT.format(row='m')}, '') FROM {FTS_KEYS} k "
        "JOIN message m ON m.id = k.message_id",
    ]


def _quoted(values: list[str]) -> str:
    return ", ".join(f"'{v}'" for v in values)


@lru_cache(maxsize=64)
def _pg_condition(configs: tuple[str, ...]) -> TextClause:
    """A message matches under its own language's configuration, the one its vector was built
    with (one query per configuration: a negation in one must not be undone by another)."""
    # The configurations and language codes are Treegate's own constants, never a client's.
    parts = []
    for config in configs:
        if config == SIMPLE_CONFIG:
            langs = f"message.lang NOT IN ({_quoted(list(TEXT_SEARCH_CONFIGS))})"
        else:
            mapped = [lang for lang, c in TEXT_SEARCH_CONFIGS.items() if c == config]
            langs = f"message.lang IN ({_quoted(mapped)})"
        query = f"websearch_to_tsquery('{config}'::regconfig, :search)"
        parts.append(f"({langs} AND message.{SEARCH_VECTOR} @@ {query})")
    exact = f"({' OR '.join(parts)})"
    if len(configs) > 1:
        # The planner scans the GIN index for one tsquery, not for an OR of conditions that
        # each also test the language: so first every configuration's query joined (a
        # superset, read from the index), then the exact condition on what it found.
        joined = " || ".join(f"websearch_to_tsquery('{c}'::regconfig, :search)" for c in configs)
        exact = f"(message.{SEARCH_VECTOR} @@ ({joined}) AND {exact})"
    return text(exact).bindparams(bindparam("search"))


_SQLITE_CONDITION = text(
    f"message.id IN (SELECT k.message_id FROM {FTS_TABLE} s "
    f"JOIN {FTS_KEYS} k ON k.seq = s.rowid WHERE {FTS_TABLE} MATCH :search)"
).bindparams(bindparam("search"))


def condition(configs: tuple[str, ...], *, pg: bool) -> TextClause:
    """The WHERE condition of a search, with the parameter `search` (`search_parameter`)."""
    return _pg_condition(configs) if pg else _SQLITE_CONDITION


def search_parameter(search: Search, *, pg: bool) -> str:
    """On PostgreSQL the text as the client wrote it (read by `websearch_to_tsquery` under each
    configuration); on SQLite the FTS5 rendering of the parsed search."""
    return search.text if pg else fts5_query(search)
