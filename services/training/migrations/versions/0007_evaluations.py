"""evaluations: the training_evaluations table, and each task's automatic evaluation

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.add_column(sa.Column("evaluation_id", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("evaluation", sa.LargeBinary(), nullable=False, server_default=""))
    op.create_table(
        "training_evaluations",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False),
        sa.Column("task_type", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("dataset_version_id", sa.String(128), nullable=False),
        sa.Column("splits", sa.String(), nullable=False),
        sa.Column("automatic", sa.Boolean(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(), nullable=False),
        sa.Column("trainer_node", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("progress", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.LargeBinary(), nullable=False),
        sa.Column("artifacts", sa.String(), nullable=False),
        sa.Column("logs", sa.String(), nullable=False),
        sa.Column("job", sa.LargeBinary(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("project", "request_id", name="uq_training_evaluations_project_request"),
    )
    op.create_index("ix_training_evaluations_project_created", "training_evaluations", ["project", "create_time"])
    op.create_index("ix_training_evaluations_model_id", "training_evaluations", ["model_id"])
    op.create_index("ix_training_evaluations_state", "training_evaluations", ["state"])


def downgrade() -> None:
    op.drop_table("training_evaluations")
    with op.batch_alter_table("training_tasks") as batch:
        batch.drop_column("evaluation")
        batch.drop_column("evaluation_id")
