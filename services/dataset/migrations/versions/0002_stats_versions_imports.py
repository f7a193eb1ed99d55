"""statistics and lineage on versions; import jobs

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-02

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("stats_json", sa.Text(), nullable=False, server_default="{}"))
        batch.add_column(sa.Column("parent_version_id", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("ignore_index", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("request_id", sa.String(length=128), nullable=True))
    op.create_table(
        "dataset_imports",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("done", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("total", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("message", sa.Text(), nullable=False, server_default=""),
        sa.Column("dataset_id", sa.String(length=64), nullable=True),
        sa.Column("version_id", sa.String(length=64), nullable=True),
        sa.Column("rejected_json", sa.Text(), nullable=False, server_default="[]"),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("update_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_dataset_imports_project", "dataset_imports", ["project"])


def downgrade() -> None:
    op.drop_index("ix_dataset_imports_project", table_name="dataset_imports")
    op.drop_table("dataset_imports")
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("request_id")
        batch.drop_column("ignore_index")
        batch.drop_column("parent_version_id")
        batch.drop_column("stats_json")
