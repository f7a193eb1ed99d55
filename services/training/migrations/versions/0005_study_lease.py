"""a lease on each study, so one training-service replica at a time moves a search on

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_studies") as batch:
        batch.add_column(sa.Column("lease_owner", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_studies") as batch:
        batch.drop_column("lease_until")
        batch.drop_column("lease_owner")
