"""SQL tables of the training service."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class TrainingTaskRow(SQLModel, table=True):
    __tablename__ = "training_tasks"
    __table_args__ = (
        sa.UniqueConstraint("project", "request_id", name="uq_training_tasks_project_request"),
        sa.Index("ix_training_tasks_project_created", "project", "create_time"),
    )

    id: str = Field(primary_key=True, max_length=64)
    project: str = Field(max_length=128)
    # NULL when the caller gave none, so the unique constraint only binds real ids.
    request_id: str | None = Field(default=None, max_length=256)
    name: str = Field(max_length=128)
    description: str = ""
    task_type: int
    dataset_id: str = Field(max_length=128)
    dataset_version_id: str = Field(default="", max_length=128)
    model_id: str = Field(default="", max_length=256)
    # The specialized preset (ModelZooService.GetPreset) the task was created from; "" for none.
    preset_id: str = Field(default="", max_length=256, sa_column_kwargs={"server_default": ""})
    mode: int = 0
    auto_select: bytes | None = Field(default=None, sa_type=sa.LargeBinary)  # AutoSelect proto
    transfer_strategy: int = 0
    hyperparameters: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # Hyperparameters proto
    # ComputeResources proto; b"" for one process on one trainer.
    resources: bytes = Field(default=b"", sa_type=sa.LargeBinary, sa_column_kwargs={"server_default": ""})
    state: int = Field(index=True)
    failure_reason: str = ""
    trainer_node: str = ""
    attempt: int = 0
    progress: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # Progress proto
    metrics: str = "{}"  # JSON object name -> value
    epoch_metrics: str = "[]"  # JSON list of {"epoch": n, "values": {...}}
    artifacts: str = "[]"  # JSON list of {"name", "bucket", "key", "sha256", "size_bytes"}
    selection_rationale: str = ""
    job: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # the TrainingJob proto as published
    last_sequence: int = 0
    create_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
    # A hyperparameter search task: its resolved HyperparameterSearch proto; NULL for other tasks.
    search: bytes | None = Field(default=None, sa_type=sa.LargeBinary)
    # A trial task: the search task it belongs to, and its number there.
    search_task_id: str | None = Field(default=None, max_length=64, index=True)
    trial_number: int | None = None
    # Bytes under the task's prefix in the object store once it ended (NULL until measured): the project's
    # storage quota sums them; a continued task is measured again when it ends again.
    stored_bytes: int | None = Field(default=None, sa_type=sa.BigInteger)
    # The evaluation made when the task succeeded: its id and its EvaluationSummary proto.
    evaluation_id: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    evaluation: bytes = Field(default=b"", sa_type=sa.LargeBinary, sa_column_kwargs={"server_default": ""})
    # What the images show (DataType), and the recommend.v1.Suggestion proto the task was created from
    # (NULL when the model was not chosen from a recommendation).
    data_type: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    suggestion: bytes | None = Field(default=None, sa_type=sa.LargeBinary)


class TrainingTaskEventRow(SQLModel, table=True):
    __tablename__ = "training_task_events"
    __table_args__ = (
        sa.UniqueConstraint("task_id", "sequence", name="uq_training_task_events_seq"),
        sa.UniqueConstraint("task_id", "source_seq", name="uq_training_task_events_source"),
    )

    id: int | None = Field(default=None, primary_key=True)
    task_id: str = Field(foreign_key="training_tasks.id", max_length=64, index=True)
    sequence: int
    # JetStream sequence of the trainer event it came from; NULL for events the service made.
    source_seq: int | None = None
    time: datetime
    event: bytes = Field(sa_type=sa.LargeBinary)  # TaskEvent proto


class TrainingStudyRow(SQLModel, table=True):
    """The running state of a hyperparameter search; the search task's row holds the spec."""

    __tablename__ = "training_studies"

    task_id: str = Field(primary_key=True, foreign_key="training_tasks.id", max_length=64)
    objective_metric: str = Field(max_length=64)
    maximize: bool
    max_trials: int
    parallelism: int
    deadline: datetime | None = None  # the time budget's end
    ended: bool = Field(default=False, index=True)
    create_time: datetime
    # Which training-service replica is moving the search on, until when (Tuner.advance).
    lease_owner: str = Field(default="", max_length=64, sa_column_kwargs={"server_default": ""})
    lease_until: datetime | None = None


class TrainingTrialRow(SQLModel, table=True):
    """One trial: what Optuna needs to rebuild the study (params, intermediate values, value, state)."""

    __tablename__ = "training_trials"
    __table_args__ = (sa.UniqueConstraint("study_task_id", "number", name="uq_training_trials_number"),)

    id: int | None = Field(default=None, primary_key=True)
    study_task_id: str = Field(foreign_key="training_tasks.id", max_length=64, index=True)
    number: int
    task_id: str = Field(max_length=64, unique=True)  # the trial's own training task
    state: int  # TrialState
    params: str = "{}"  # JSON name -> value (float, int or str)
    intermediate: str = "{}"  # JSON epoch -> objective value
    system_attrs: str = "{}"  # JSON, Optuna's per-trial bookkeeping (successive halving rungs)
    value: float | None = None
    pruned_epoch: int = 0
    reason: str = ""
    create_time: datetime
    end_time: datetime | None = None


class TrainingEvaluationRow(SQLModel, table=True):
    """One evaluation of a model on a dataset version: run by a trainer (an evaluation job), or made from
    what a training task's trainer evaluated right after training (automatic)."""

    __tablename__ = "training_evaluations"
    __table_args__ = (
        sa.UniqueConstraint("project", "request_id", name="uq_training_evaluations_project_request"),
        sa.Index("ix_training_evaluations_project_created", "project", "create_time"),
    )

    id: str = Field(primary_key=True, max_length=64)
    project: str = Field(max_length=128)
    request_id: str | None = Field(default=None, max_length=256)
    model_id: str = Field(max_length=256, index=True)
    task_id: str = Field(default="", max_length=64)  # the training task whose model it is
    task_type: int
    dataset_id: str = Field(max_length=128)
    dataset_version_id: str = Field(max_length=128)
    splits: str = "[]"  # JSON list of Split numbers asked for
    automatic: bool = False
    state: int = Field(index=True)
    failure_reason: str = ""
    trainer_node: str = ""
    attempt: int = 0
    progress: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # EvaluationProgress proto
    summary: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # EvaluationSummary proto
    artifacts: str = "[]"  # JSON list of {"name", "bucket", "key", "sha256", "size_bytes"}
    logs: str = "[]"  # JSON list of log lines, the last MAX_LOGS
    job: bytes = Field(default=b"", sa_type=sa.LargeBinary)  # the TrainingJob proto as published
    last_sequence: int = 0  # bumped on every change, so watchers see one
    create_time: datetime
    start_time: datetime | None = None
    end_time: datetime | None = None
