"""The gateway's SQL tables (prefix gateway_)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


class GatewayApiKey(SQLModel, table=True):
    __tablename__ = "gateway_api_keys"
    __table_args__ = (sa.UniqueConstraint("project", "request_id", name="uq_gateway_api_keys_project_request_id"),)

    id: str = Field(primary_key=True, max_length=64)
    project: str = Field(index=True, max_length=128)
    role: str = Field(max_length=16)  # viewer | editor | admin
    name: str = Field(max_length=128)
    # sha256 hex of the token's secret; the secret itself is never stored.
    secret_sha256: str = Field(max_length=64)
    create_time: datetime  # aware, UTC
    expire_time: datetime | None = None  # aware, UTC; None = never
    revoked: bool = False
    revoke_time: datetime | None = None
    created_by: str = Field(default="", max_length=128)
    request_id: str | None = Field(default=None, max_length=128)
