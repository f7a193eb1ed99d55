"""SQL tables of the model zoo service (all prefixed modelzoo_)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class WeightsRow(SQLModel, table=True):
    """Weights of one catalog model, imported into the store. The catalog is shared by every project,
    and so are these rows (they hold public pre-trained weights, no project data)."""

    __tablename__ = "modelzoo_weights"

    model_id: str = Field(primary_key=True, max_length=256)
    bucket: str = Field(max_length=128)
    key: str = Field(max_length=512)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))
    # Where the file came from: "package:<distribution>:<file name>" or "dir:<path>".
    source: str = Field(max_length=1024)
    imported_at: datetime = Field(sa_column=sa.Column(sa.DateTime(timezone=True), nullable=False))
