"""Treegate's own tables: the transition log, counters, API keys, idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "treegate_transition",
        sa.Column(
            "sequence",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
        ),
        sa.Column("message_tree_id", sa.Uuid(), nullable=False),
        sa.Column("from_state", sa.String(128), nullable=True),
        sa.Column("to_state", sa.String(128), nullable=False),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("actor", sa.String(256), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index(
        "ix_treegate_transition_tree", "treegate_transition", ["message_tree_id", "sequence"]
    )
    op.create_table(
        "treegate_counter",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.BigInteger(), nullable=False),
    )
    op.execute("INSERT INTO treegate_counter (name, value) VALUES ('transition', 0)")
    op.create_table(
        "treegate_api_key",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("role", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("prefix", sa.String(16), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("revoked_at", TZ, nullable=True),
    )
    op.create_table(
        "treegate_idempotency",
        sa.Column("scope", sa.String(256), primary_key=True),
        sa.Column("key", sa.String(256), primary_key=True),
        sa.Column("operation", sa.String(64), nullable=False),
        sa.Column("request_hash", sa.String(64), nullable=False),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("expires_at", TZ, nullable=False),
    )
    op.create_index(
        "ix_treegate_idempotency_expires_at", "treegate_idempotency", ["expires_at"]
    )


def downgrade() -> None:
    op.drop_table("treegate_idempotency")
    op.drop_table("treegate_api_key")
    op.drop_table("treegate_counter")
    op.drop_index("ix_treegate_transition_tree", table_name="treegate_transition")
    op.drop_table("treegate_transition")
