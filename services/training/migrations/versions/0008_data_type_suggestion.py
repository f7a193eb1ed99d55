"""training tasks record what their images show and the suggestion they were created from

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.add_column(sa.Column("data_type", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("suggestion", sa.LargeBinary(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.drop_column("suggestion")
        batch.drop_column("data_type")
