"""Projects (tenants), their members, and the audit log of mutating calls; plain synchronous SQL code.

A project owns every resource made in it; keys act in exactly one project. Members are named
people or services with a role; keys issued to a member never exceed the member's role and are
revoked when the member is removed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.keys import ROLES, KeyInfo, KeyStore, _utc, utcnow
from gateway.models import GatewayAuditEntry, GatewayProject, GatewayProjectMember
from gateway.paging import decode_page, encode_page, page_size
from kernel import fields
from kernel.errors import AlreadyExists, InvalidArgument, NotFound

PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{1,62}")
MAX_MEMBER = 128


@dataclass(frozen=True)
class ProjectInfo:
    id: str
    display_name: str
    create_time: datetime
    created_by: str


@dataclass(frozen=True)
class MemberInfo:
    project: str
    member: str
    role: str
    create_time: datetime


@dataclass(frozen=True)
class AuditInfo:
    id: int
    time: datetime
    project: str
    principal: str
    key_id: str
    role: str
    method: str
    target: str
    code: str
    message: str


def _project(row: GatewayProject) -> ProjectInfo:
    return ProjectInfo(row.id, row.display_name, _utc(row.create_time), row.created_by)  # type: ignore[arg-type]


class Tenancy:
    def __init__(self, engine: Engine, keys: KeyStore) -> None:
        self.engine = engine
        self.keys = keys

    # -- projects -------------------------------------------------------------------------------
    def ensure_project(self, project_id: str, created_by: str = "bootstrap") -> None:
        with Session(self.engine) as session:
            if session.get(GatewayProject, project_id) is None:
                session.add(
                    GatewayProject(
                        id=project_id, display_name=project_id, create_time=_utc(utcnow()), created_by=created_by
                    )
                )
                try:
                    session.commit()
                except IntegrityError:  # another replica made it
                    session.rollback()

    def create_project(
        self, project_id: str, display_name: str, admin_key_name: str, created_by: str
    ) -> tuple[ProjectInfo, KeyInfo, str]:
        violations = {}
        if not PROJECT_ID.fullmatch(project_id or ""):
            violations["project_id"] = "must be 2..63 lowercase letters, digits or '-', starting with a letter"
        display_name = (display_name or project_id).strip()
        why = fields.name_violation(display_name)
        if why is not None:
            violations["display_name"] = why
        if violations:
            raise InvalidArgument(violations)
        row = GatewayProject(
            id=project_id, display_name=display_name, create_time=_utc(utcnow()), created_by=created_by
        )
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
                session.refresh(row)
                info = _project(row)
        except IntegrityError:
            raise AlreadyExists(f"project {project_id!r} already exists", metadata={"project": project_id}) from None
        key, token = self.keys.create(
            project=project_id, name=admin_key_name or "admin", role="admin", created_by=created_by
        )
        return info, key, token

    def list_projects(self, only: str | None, size: int, token: str) -> tuple[list[ProjectInfo], str]:
        size = page_size(size)
        offset = decode_page(token, "ListProjects")
        with Session(self.engine) as session:
            query = select(GatewayProject)
            if only is not None:
                query = query.where(GatewayProject.id == only)
            rows = session.exec(query.order_by(col(GatewayProject.id)).offset(offset).limit(size + 1)).all()
            infos = [_project(r) for r in rows[:size]]
        return infos, (encode_page(offset + size) if len(rows) > size else "")

    # -- members --------------------------------------------------------------------------------
    def add_member(self, project: str, member: str, role: str) -> MemberInfo:
        violations = {}
        member = (member or "").strip()
        if not 1 <= len(member) <= MAX_MEMBER:
            violations["member"] = f"must be 1..{MAX_MEMBER} characters"
        if role not in ROLES:
            violations["role"] = "required: ROLE_VIEWER, ROLE_EDITOR or ROLE_ADMIN"
        if violations:
            raise InvalidArgument(violations)
        with Session(self.engine) as session:
            row = session.get(GatewayProjectMember, (project, member))
            if row is None:
                row = GatewayProjectMember(project=project, member=member, role=role, create_time=_utc(utcnow()))
            row.role = role
            session.add(row)
            session.commit()
            session.refresh(row)
            return MemberInfo(row.project, row.member, row.role, _utc(row.create_time))  # type: ignore[arg-type]

    def list_members(self, project: str, size: int, token: str) -> tuple[list[MemberInfo], str]:
        size = page_size(size)
        offset = decode_page(token, "ListProjectMembers")
        with Session(self.engine) as session:
            rows = session.exec(
                select(GatewayProjectMember)
                .where(GatewayProjectMember.project == project)
                .order_by(col(GatewayProjectMember.member))
                .offset(offset)
                .limit(size + 1)
            ).all()
            infos = [MemberInfo(r.project, r.member, r.role, _utc(r.create_time)) for r in rows[:size]]  # type: ignore[arg-type]
        return infos, (encode_page(offset + size) if len(rows) > size else "")

    def remove_member(self, project: str, member: str) -> list[str]:
        if not member:
            raise InvalidArgument({"member": "required"})
        with Session(self.engine) as session:
            row = session.get(GatewayProjectMember, (project, member))
            if row is None:
                raise NotFound(f"member {member!r} not found", metadata={"member": member})
            session.delete(row)
            session.commit()
        return self.keys.revoke_member_keys(project, member)

    # -- audit ----------------------------------------------------------------------------------
    def record(
        self, caller: KeyInfo, method: str, target: str, code: str, message: str, now: datetime | None = None
    ) -> None:
        with Session(self.engine) as session:
            session.add(
                GatewayAuditEntry(
                    time=_utc(now or utcnow()),
                    project=caller.project,
                    principal=caller.principal[:200],
                    key_id=caller.id,
                    role=caller.role,
                    method=method[:256],
                    target=target[:512],
                    code=code,
                    message=message[:1024],
                )
            )
            session.commit()

    def list_audit(self, project: str, size: int, token: str, method_contains: str = "") -> tuple[list[AuditInfo], str]:
        size = page_size(size)
        offset = decode_page(token, "ListAuditEntries")
        with Session(self.engine) as session:
            query = select(GatewayAuditEntry).where(GatewayAuditEntry.project == project)
            if method_contains:
                query = query.where(col(GatewayAuditEntry.method).contains(method_contains))
            rows = session.exec(query.order_by(col(GatewayAuditEntry.id).desc()).offset(offset).limit(size + 1)).all()
            infos = [
                AuditInfo(
                    r.id or 0,
                    _utc(r.time),  # type: ignore[arg-type]
                    r.project,
                    r.principal,
                    r.key_id,
                    r.role,
                    r.method,
                    r.target,
                    r.code,
                    r.message,
                )
                for r in rows[:size]
            ]
        return infos, (encode_page(offset + size) if len(rows) > size else "")
