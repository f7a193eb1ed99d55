"""gateway projects, members, audit log; keys issued to members

Revision ID: 0002
Revises: 0001
Create Date: 2026-05-10
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.add_column(sa.Column("member", sa.String(length=128), nullable=True))
    op.create_table(
        "gateway_projects",
        sa.Column("id", sa.String(length=63), nullable=False),
        sa.Column("display_name", sa.String(length=128), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "gateway_project_members",
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("member", sa.String(length=128), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("project", "member"),
    )
    op.create_table(
        "gateway_audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("project", sa.String(length=128), nullable=False),
        sa.Column("principal", sa.String(length=200), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("method", sa.String(length=256), nullable=False),
        sa.Column("target", sa.String(length=512), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("message", sa.String(length=1024), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_gateway_audit_log_project_id", "gateway_audit_log", ["project", "id"])


def downgrade() -> None:
    op.drop_index("ix_gateway_audit_log_project_id", table_name="gateway_audit_log")
    op.drop_table("gateway_audit_log")
    op.drop_table("gateway_project_members")
    op.drop_table("gateway_projects")
    with op.batch_alter_table("gateway_api_keys") as batch:
        batch.drop_column("member")
