"""weights per scope: the public ones (project '') and each project's own uploads

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def _create(name: str) -> None:
    op.create_table(
        name,
        sa.Column("project", _s(128), nullable=False),
        sa.Column("model_id", _s(256), nullable=False),
        sa.Column("bucket", _s(128), nullable=False),
        sa.Column("key", _s(512), nullable=False),
        sa.Column("sha256", _s(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("source", _s(1024), nullable=False),
        sa.Column("imported_by", _s(200), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project", "model_id", name=f"pk_{name}"),
    )


def upgrade() -> None:
    # A new primary key (project, model_id): copy into a new table (portable across SQLite and
    # PostgreSQL, unlike altering a primary key in place). Existing rows are the public weights.
    _create("modelzoo_weights_scoped")
    op.execute(
        "INSERT INTO modelzoo_weights_scoped "
        "(project, model_id, bucket, key, sha256, size_bytes, source, imported_by, imported_at) "
        "SELECT '', model_id, bucket, key, sha256, size_bytes, source, '', imported_at FROM modelzoo_weights"
    )
    op.drop_index("ix_modelzoo_weights_sha256", table_name="modelzoo_weights")
    op.drop_table("modelzoo_weights")
    op.rename_table("modelzoo_weights_scoped", "modelzoo_weights")
    op.create_index("ix_modelzoo_weights_sha256", "modelzoo_weights", ["sha256"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM modelzoo_weights WHERE project <> ''")
    with op.batch_alter_table("modelzoo_weights") as batch:
        batch.drop_column("imported_by")
        batch.drop_column("project")
