"""training tasks and their events

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "training_tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("project", sa.String(128), nullable=False),
        sa.Column("request_id", sa.String(256), nullable=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("description", sa.String(), nullable=False),
        sa.Column("task_type", sa.Integer(), nullable=False),
        sa.Column("dataset_id", sa.String(128), nullable=False),
        sa.Column("dataset_version_id", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("mode", sa.Integer(), nullable=False),
        sa.Column("auto_select", sa.LargeBinary(), nullable=True),
        sa.Column("transfer_strategy", sa.Integer(), nullable=False),
        sa.Column("hyperparameters", sa.LargeBinary(), nullable=False),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("failure_reason", sa.String(), nullable=False),
        sa.Column("trainer_node", sa.String(), nullable=False),
        sa.Column("attempt", sa.Integer(), nullable=False),
        sa.Column("progress", sa.LargeBinary(), nullable=False),
        sa.Column("metrics", sa.String(), nullable=False),
        sa.Column("epoch_metrics", sa.String(), nullable=False),
        sa.Column("artifacts", sa.String(), nullable=False),
        sa.Column("selection_rationale", sa.String(), nullable=False),
        sa.Column("job", sa.LargeBinary(), nullable=False),
        sa.Column("last_sequence", sa.Integer(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("start_time", sa.DateTime(timezone=True), nullable=True),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("project", "request_id", name="uq_training_tasks_project_request"),
    )
    op.create_index("ix_training_tasks_project_created", "training_tasks", ["project", "create_time"])
    op.create_index("ix_training_tasks_state", "training_tasks", ["state"])
    op.create_table(
        "training_task_events",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("task_id", sa.String(64), sa.ForeignKey("training_tasks.id"), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("source_seq", sa.Integer(), nullable=True),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("event", sa.LargeBinary(), nullable=False),
        sa.UniqueConstraint("task_id", "sequence", name="uq_training_task_events_seq"),
        sa.UniqueConstraint("task_id", "source_seq", name="uq_training_task_events_source"),
    )
    op.create_index("ix_training_task_events_task_id", "training_task_events", ["task_id"])


def downgrade() -> None:
    op.drop_table("training_task_events")
    op.drop_table("training_tasks")
