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
    # Member the key was issued to (removing the member revokes the key); None for plain keys.
    member: str | None = Field(default=None, max_length=128)
    # Also acts for the platform's operators (public weights); only an operator's key may grant it.
    platform_operator: bool = False


class GatewayProject(SQLModel, table=True):
    __tablename__ = "gateway_projects"

    id: str = Field(primary_key=True, max_length=63)
    display_name: str = Field(max_length=128)
    create_time: datetime  # aware, UTC
    created_by: str = Field(default="", max_length=128)


class GatewayProjectMember(SQLModel, table=True):
    __tablename__ = "gateway_project_members"

    project: str = Field(primary_key=True, max_length=128)
    member: str = Field(primary_key=True, max_length=128)
    role: str = Field(max_length=16)
    create_time: datetime


class GatewayAuditEntry(SQLModel, table=True):
    __tablename__ = "gateway_audit_log"
    __table_args__ = (sa.Index("ix_gateway_audit_log_project_id", "project", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    time: datetime
    project: str = Field(max_length=128)
    principal: str = Field(max_length=200)
    key_id: str = Field(max_length=64)
    role: str = Field(max_length=16)
    method: str = Field(max_length=256)
    target: str = Field(default="", max_length=512)
    code: str = Field(max_length=32)
    message: str = Field(default="", max_length=1024)
