"""hyperparameter searches: the search spec and trial links on tasks, studies and their trials

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("training_tasks") as batch:
        batch.add_column(sa.Column("search", sa.LargeBinary(), nullable=True))
        batch.add_column(sa.Column("search_task_id", sa.String(64), nullable=True))
        batch.add_column(sa.Column("trial_number", sa.Integer(), nullable=True))
    op.create_index("ix_training_tasks_search_task_id", "training_tasks", ["search_task_id"])
    op.create_table(
        "training_studies",
        sa.Column("task_id", sa.String(64), sa.ForeignKey("training_tasks.id"), primary_key=True),
        sa.Column("objective_metric", sa.String(64), nullable=False),
        sa.Column("maximize", sa.Boolean(), nullable=False),
        sa.Column("max_trials", sa.Integer(), nullable=False),
        sa.Column("parallelism", sa.Integer(), nullable=False),
        sa.Column("deadline", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_training_studies_ended", "training_studies", ["ended"])
    op.create_table(
        "training_trials",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("study_task_id", sa.String(64), sa.ForeignKey("training_tasks.id"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.String(64), nullable=False, unique=True),
        sa.Column("state", sa.Integer(), nullable=False),
        sa.Column("params", sa.String(), nullable=False),
        sa.Column("intermediate", sa.String(), nullable=False),
        sa.Column("system_attrs", sa.String(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("pruned_epoch", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(), nullable=False),
        sa.Column("create_time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("end_time", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("study_task_id", "number", name="uq_training_trials_number"),
    )
    op.create_index("ix_training_trials_study_task_id", "training_trials", ["study_task_id"])


def downgrade() -> None:
    op.drop_table("training_trials")
    op.drop_table("training_studies")
    op.drop_index("ix_training_tasks_search_task_id", "training_tasks")
    with op.batch_alter_table("training_tasks") as batch:
        batch.drop_column("trial_number")
        batch.drop_column("search_task_id")
        batch.drop_column("search")
