"""trained models registered by the training service

Revision ID: 0002
Revises: 0001
Create Date: 2026-02-01

"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _s(length: int) -> sqlmodel.sql.sqltypes.AutoString:
    return sqlmodel.sql.sqltypes.AutoString(length=length)


def upgrade() -> None:
    op.create_table(
        "modelzoo_trained_models",
        sa.Column("project", _s(128), nullable=False),
        sa.Column("task_id", _s(128), nullable=False),
        sa.Column("request_id", _s(128), nullable=True),
        sa.Column("name", _s(256), nullable=False),
        sa.Column("base_model_id", _s(256), nullable=False),
        sa.Column("task_type", _s(32), nullable=False),
        sa.Column("library", _s(32), nullable=False),
        sa.Column("architecture", _s(256), nullable=False),
        sa.Column("class_names_json", sa.Text(), nullable=False),
        sa.Column("metrics_json", sa.Text(), nullable=False),
        sa.Column("mean_json", sa.Text(), nullable=False),
        sa.Column("std_json", sa.Text(), nullable=False),
        sa.Column("dataset_id", _s(128), nullable=False),
        sa.Column("dataset_version_id", _s(128), nullable=False),
        sa.Column("default_input_size", sa.Integer(), nullable=False),
        sa.Column("weights_bucket", _s(128), nullable=False),
        sa.Column("weights_key", _s(512), nullable=False),
        sa.Column("weights_sha256", _s(64), nullable=False),
        sa.Column("weights_size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project", "task_id"),
        sa.UniqueConstraint("project", "request_id", name="uq_modelzoo_trained_request"),
    )


def downgrade() -> None:
    op.drop_table("modelzoo_trained_models")
