"""An API key's own request rate limit (`treegate keys create --rate-limit`), null for the
default of its role.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("treegate_api_key") as batch:
        batch.add_column(sa.Column("rate_limit", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("treegate_api_key") as batch:
        batch.drop_column("rate_limit")
