"""SQL tables of the dataset service (all prefixed dataset_)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class DatasetRow(SQLModel, table=True):
    __tablename__ = "dataset_datasets"
    __table_args__ = (
        sa.UniqueConstraint("project", "name", name="uq_dataset_datasets_project_name"),
        sa.UniqueConstraint("project", "request_id", name="uq_dataset_datasets_project_request_id"),
        sa.Index("ix_dataset_datasets_project_create_time", "project", "create_time", "id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    project: str = Field(max_length=128)
    name: str = Field(max_length=128)
    description: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    request_id: str | None = Field(default=None, max_length=128)
    latest_version_id: str | None = Field(default=None, max_length=64)
    create_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    update_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class DatasetTaskTypeRow(SQLModel, table=True):
    """One row per task type a dataset can train, so ListDatasets(task_type) is an indexed query."""

    __tablename__ = "dataset_task_types"
    __table_args__ = (sa.Index("ix_dataset_task_types_task_type", "task_type", "dataset_id"),)

    dataset_id: str = Field(foreign_key="dataset_datasets.id", primary_key=True, max_length=64, ondelete="CASCADE")
    task_type: str = Field(primary_key=True, max_length=64)


class DatasetVersionRow(SQLModel, table=True):
    __tablename__ = "dataset_versions"
    __table_args__ = (sa.UniqueConstraint("dataset_id", "number", name="uq_dataset_versions_dataset_number"),)

    id: str = Field(primary_key=True, max_length=64)
    dataset_id: str = Field(foreign_key="dataset_datasets.id", index=True, max_length=64, ondelete="CASCADE")
    project: str = Field(max_length=128, index=True)
    number: int
    manifest_bucket: str = Field(max_length=128)
    manifest_key: str = Field(max_length=512)
    manifest_sha256: str = Field(max_length=64)
    manifest_size: int
    case_count: int
    train_count: int
    val_count: int
    test_count: int
    # JSON: [{"index": 0, "name": "cat", "count": 12}, ...]
    classes_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    # JSON list of annotation type names ("label", "box", ...)
    annotation_types_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    source_format: str = Field(max_length=32)
    # JSON list of import warnings
    warnings_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    create_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    # JSON statistics (see services.dataset.stats)
    stats_json: str = Field(default="{}", sa_column=sa.Column(sa.Text, nullable=False, server_default="{}"))
    parent_version_id: str | None = Field(default=None, max_length=64)
    ignore_index: int | None = None
    request_id: str | None = Field(default=None, max_length=128)
    import_id: str | None = Field(default=None, max_length=64)  # its import's report (dataset_imports)


class ImportRow(SQLModel, table=True):
    """One import (an upload stream, or from the upload bucket in the background; WatchImport polls it),
    with its full report: every rejected file and every warning (GetImportReport)."""

    __tablename__ = "dataset_imports"

    id: str = Field(primary_key=True, max_length=64)
    project: str = Field(max_length=128, index=True)
    state: str = Field(max_length=16)  # pending | running | succeeded | failed
    done: int = 0
    total: int = 0
    message: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False, server_default=""))
    dataset_id: str | None = Field(default=None, max_length=64)
    version_id: str | None = Field(default=None, max_length=64)
    rejected_json: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False, server_default="[]"))
    warnings_json: str = Field(default="[]", sa_column=sa.Column(sa.Text, nullable=False, server_default="[]"))
    worker: str | None = Field(default=None, max_length=64)  # host running it; update_time is its heartbeat
    create_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
    update_time: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


__all__ = ["DatasetRow", "DatasetTaskTypeRow", "DatasetVersionRow", "ImportRow", "SQLModel"]
