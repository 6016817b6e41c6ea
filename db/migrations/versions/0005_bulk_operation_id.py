"""The bulk operation a log row belongs to (`transitionTrees`), null for single mutations.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("treegate_transition") as batch:
        batch.add_column(sa.Column("bulk_operation_id", sa.Uuid(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("treegate_transition") as batch:
        batch.drop_column("bulk_operation_id")
