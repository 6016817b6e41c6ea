"""Open-Assistant's tables: user, user_stats, message, message_tree_state.

Each table is created only when it is absent, so that pointing Treegate at an existing
Open-Assistant database never alters (or duplicates) one of its tables.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TZ = sa.DateTime(timezone=True)


def _absent(name: str) -> bool:
    return not sa.inspect(op.get_bind()).has_table(name)


def upgrade() -> None:
    if _absent("user"):
        op.create_table(
            "user",
            sa.Column("id", sa.Uuid(), primary_key=True),
            sa.Column("username", sa.String(128), nullable=False),
            sa.Column("auth_method", sa.String(128), nullable=False, server_default="local"),
            sa.Column("display_name", sa.String(256), nullable=False),
            sa.Column(
                "created_date", TZ, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
            ),
            sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.true()),
            sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
        )
        op.create_index("ix_user_username", "user", ["auth_method", "username"], unique=True)

    if _absent("user_stats"):
        op.create_table(
            "user_stats",
            sa.Column("user_id", sa.Uuid(), sa.ForeignKey("user.id"), primary_key=True),
            sa.Column("time_frame", sa.String(32), primary_key=True),
            sa.Column("reply_ranked_1", sa.Integer(), nullable=False, server_default=sa.text("0")),
        )

    if _absent("message"):
        op.create_table(
            "message",
            sa.Column("id", sa.Uuid(), primary_key=True),
            sa.Column("parent_id", sa.Uuid(), nullable=True),
            sa.Column("message_tree_id", sa.Uuid(), nullable=False),
            sa.Column("user_id", sa.Uuid(), sa.ForeignKey("user.id"), nullable=True),
            sa.Column("role", sa.String(128), nullable=False),
            sa.Column(
                "created_date", TZ, nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
            ),
            sa.Column("payload_type", sa.String(200), nullable=False),
            sa.Column("payload", JSON, nullable=True),
            sa.Column("lang", sa.String(32), nullable=False, server_default="en"),
            sa.Column("depth", sa.Integer(), nullable=False, server_default=sa.text("0")),
            sa.Column("children_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
            sa.Column("deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
            sa.Column("review_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
            sa.Column("review_result", sa.Boolean(), nullable=True),
            sa.Column("ranking_count", sa.Integer(), nullable=False, server_default=sa.text("0")),
            sa.Column("rank", sa.Integer(), nullable=True),
            sa.Column("synthetic", sa.Boolean(), nullable=False, server_default=sa.false()),
            sa.Column("edited", sa.Boolean(), nullable=False, server_default=sa.false()),
            sa.Column("model_name", sa.String(1024), nullable=True),
            sa.Column("emojis", JSON, nullable=True),
        )
        op.create_index("ix_message_message_tree_id", "message", ["message_tree_id"])
        op.create_index("ix_message_user_id", "message", ["user_id"])
        op.create_index("ix_message_created_date", "message", ["created_date"])

    if _absent("message_tree_state"):
        op.create_table(
            "message_tree_state",
            sa.Column(
                "message_tree_id", sa.Uuid(), sa.ForeignKey("message.id"), primary_key=True
            ),
            sa.Column("goal_tree_size", sa.Integer(), nullable=False),
            sa.Column("max_depth", sa.Integer(), nullable=False),
            sa.Column("max_children_count", sa.Integer(), nullable=False),
            sa.Column("state", sa.String(128), nullable=False),
            sa.Column("active", sa.Boolean(), nullable=False),
            sa.Column("origin", sa.String(1024), nullable=True),
            sa.Column("won_prompt_lottery_date", TZ, nullable=True),
            sa.Column("lang", sa.String(32), nullable=False),
        )
        op.create_index("ix_message_tree_state_active", "message_tree_state", ["active"])
        op.create_index(
            "ix_message_tree_state__lang__state", "message_tree_state", ["state", "lang"]
        )


def downgrade() -> None:
    # Never drop Open-Assistant's tables: they may hold an Open-Assistant deployment's data.
    pass
