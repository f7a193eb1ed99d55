"""SQL tables of the model zoo service (all prefixed modelzoo_)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class WeightsRow(SQLModel, table=True):
    """Weights of one catalog model in the store, for one scope: project "" holds the public weights
    every project fine-tunes from (changed only from a configured source or by a platform operator);
    any other value is that project's own upload, used by its tasks instead of the public ones."""

    __tablename__ = "modelzoo_weights"
    __table_args__ = (sa.PrimaryKeyConstraint("project", "model_id", name="pk_modelzoo_weights_scoped"),)

    project: str = Field(max_length=128)
    model_id: str = Field(max_length=256)
    bucket: str = Field(max_length=128)
    key: str = Field(max_length=512)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # Where the file came from: "<configured source>:<URL or path>" (offline:/path/x.pth,
    # publishers:https://download.pytorch.org/models/x.pth), "upload:<bucket>/<key>" or "stream[:<origin>]".
    source: str = Field(max_length=1024)
    # Who put them there: "" for imports from a configured source, else the gateway's principal.
    imported_by: str = Field(default="", max_length=200)
    imported_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))


class TrainedModelRow(SQLModel, table=True):
    """A model trained on this platform, registered by the training service; private to its project."""

    __tablename__ = "modelzoo_trained_models"
    __table_args__ = (sa.UniqueConstraint("project", "request_id", name="uq_modelzoo_trained_request"),)

    project: str = Field(primary_key=True, max_length=128)
    task_id: str = Field(primary_key=True, max_length=128)
    request_id: str | None = Field(default=None, max_length=128)
    name: str = Field(max_length=256)
    base_model_id: str = Field(max_length=256)
    task_type: str = Field(max_length=32)
    library: str = Field(max_length=32)
    architecture: str = Field(max_length=256)
    # JSON: class names, metrics, mean, std
    class_names_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    metrics_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    mean_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    std_json: str = Field(sa_column=sa.Column(sa.Text, nullable=False))
    dataset_id: str = Field(max_length=128)
    dataset_version_id: str = Field(max_length=128)
    default_input_size: int
    weights_bucket: str = Field(max_length=128)
    weights_key: str = Field(max_length=512)
    weights_sha256: str = Field(max_length=64)
    weights_size_bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    created_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
