"""import reports: every warning of an import, the import that made each version, the host running an import

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_imports") as batch:
        batch.add_column(sa.Column("warnings_json", sa.Text(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("worker", sa.String(length=64), nullable=True))
    with op.batch_alter_table("dataset_versions") as batch:
        batch.add_column(sa.Column("import_id", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("dataset_versions") as batch:
        batch.drop_column("import_id")
    with op.batch_alter_table("dataset_imports") as batch:
        batch.drop_column("worker")
        batch.drop_column("warnings_json")
