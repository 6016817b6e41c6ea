"""Full-text search over messages (`db.search`).

PostgreSQL: on Treegate's own `message` table, the generated `search_vector` column and its GIN
index, as Open-Assistant names them. Any other `message` table (an Open-Assistant database's)
is never altered: it has its own `search_vector` (or, from before Open-Assistant added search,
none, and search is not available there).

SQLite: the FTS5 table, its key table and the triggers that keep them in step, filled from
the messages already there.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.search import FTS_KEYS, FTS_TABLE, SEARCH_INDEX, SEARCH_VECTOR, pg_vector_sql
from db.search import sqlite_statements
from db.tables import message

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OWN_COLUMNS = frozenset(message.c.keys())
"""The columns of the `message` table migration 0001 creates: a table with others (an
Open-Assistant database's) is not Treegate's to alter."""


def _own_message_table() -> bool:
    columns = {c["name"] for c in sa.inspect(op.get_bind()).get_columns("message")}
    return columns == OWN_COLUMNS


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if not _own_message_table():
            return
        op.execute(
            f"ALTER TABLE message ADD COLUMN {SEARCH_VECTOR} tsvector "
            f"GENERATED ALWAYS AS ({pg_vector_sql()}) STORED"
        )
        op.execute(f"CREATE INDEX {SEARCH_INDEX} ON message USING gin ({SEARCH_VECTOR})")
        return
    for statement in sqlite_statements():
        op.execute(statement)


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        if {c["name"] for c in sa.inspect(bind).get_columns("message")} == {
            *OWN_COLUMNS,
            SEARCH_VECTOR,
        }:
            op.execute(f"DROP INDEX IF EXISTS {SEARCH_INDEX}")
            op.execute(f"ALTER TABLE message DROP COLUMN IF EXISTS {SEARCH_VECTOR}")
        return
    for trigger in ("insert", "delete", "update"):
        op.execute(f"DROP TRIGGER IF EXISTS {FTS_TABLE}_{trigger}")
    op.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")
    op.execute(f"DROP TABLE IF EXISTS {FTS_KEYS}")
