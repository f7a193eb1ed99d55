"""platform operators' keys

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.add_column(sa.Column("platform_operator", sa.Boolean(), nullable=False, server_default=sa.false()))
    # The local stack's first key (created by upsert_bootstrap) was the platform's own key before
    # operators existed; it stays able to manage the public weights.
    op.execute("UPDATE gateway_api_keys SET platform_operator = TRUE WHERE created_by = 'bootstrap'")


def downgrade() -> None:
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.drop_column("platform_operator")
