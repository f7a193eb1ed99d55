"""training tasks remember the processes and nodes they train with (ComputeResources)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.add_column(sa.Column("resources", sa.LargeBinary(), nullable=False, server_default=sa.text("''")))


def downgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.drop_column("resources")
