"""AuthService, served by the gateway itself: thin proto <-> keys.KeyStore, scoped to the caller's project."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

from google.protobuf import timestamp_pb2

from gateway import tokens
from gateway.auth import Authenticator
from gateway.keys import ROLES, KeyInfo, KeyStore, role_at_least
from gateway.tenancy import AuditInfo, MemberInfo, ProjectInfo, Tenancy
from kernel.errors import InvalidArgument, PermissionDenied
from trainyard.auth.v1 import auth_pb2, auth_service_pb2

_ROLE_TO_PROTO = {
    "viewer": auth_pb2.ROLE_VIEWER,
    "editor": auth_pb2.ROLE_EDITOR,
    "admin": auth_pb2.ROLE_ADMIN,
}
_ROLE_FROM_PROTO = {v: k for k, v in _ROLE_TO_PROTO.items()}


def key_to_proto(info: KeyInfo) -> auth_pb2.ApiKey:
    key = auth_pb2.ApiKey(
        id=info.id,
        project=info.project,
        role=_ROLE_TO_PROTO.get(info.role, auth_pb2.ROLE_UNSPECIFIED),
        name=info.name,
        revoked=info.revoked,
        platform_operator=info.platform_operator,
    )
    key.create_time.FromDatetime(info.create_time)
    if info.expire_time is not None:
        key.expire_time.FromDatetime(info.expire_time)
    return key


def project_to_proto(info: ProjectInfo) -> auth_pb2.Project:
    project = auth_pb2.Project(id=info.id, display_name=info.display_name, created_by=info.created_by)
    project.create_time.FromDatetime(info.create_time)
    return project


def member_to_proto(info: MemberInfo) -> auth_pb2.ProjectMember:
    member = auth_pb2.ProjectMember(
        project=info.project, member=info.member, role=_ROLE_TO_PROTO.get(info.role, auth_pb2.ROLE_UNSPECIFIED)
    )
    member.create_time.FromDatetime(info.create_time)
    return member


def audit_to_proto(info: AuditInfo) -> auth_pb2.AuditEntry:
    entry = auth_pb2.AuditEntry(
        id=info.id,
        project=info.project,
        principal=info.principal,
        key_id=info.key_id,
        role=_ROLE_TO_PROTO.get(info.role, auth_pb2.ROLE_UNSPECIFIED),
        method=info.method,
        target=info.target,
        code=info.code,
        message=info.message,
    )
    entry.time.FromDatetime(info.time)
    return entry


MAX_TOKEN_TTL = 86400
DEFAULT_TOKEN_TTL = 3600


def _timestamp(ts: timestamp_pb2.Timestamp):
    return ts.ToDatetime(tzinfo=UTC)


class AuthServicer:
    """Each method takes the request and the verified caller (the gateway has authorised the call)."""

    def __init__(
        self,
        store: KeyStore,
        authenticator: Authenticator,
        tenancy: Tenancy | None = None,
        admin_project: str = "default",
    ) -> None:
        self.store = store
        self.authenticator = authenticator
        self.tenancy = tenancy or Tenancy(store.engine, store)
        self.admin_project = admin_project

    async def WhoAmI(self, request: auth_service_pb2.WhoAmIRequest, caller: KeyInfo):
        return auth_service_pb2.WhoAmIResponse(key=key_to_proto(caller))

    async def CreateApiKey(self, request: auth_service_pb2.CreateApiKeyRequest, caller: KeyInfo):
        if request.platform_operator and not caller.platform_operator:
            raise PermissionDenied(
                "only a platform operator may create a platform operator's key",
                metadata={"field": "platform_operator"},
            )
        info, token = await asyncio.to_thread(
            self.store.create,
            project=caller.project,
            name=request.name,
            role=_ROLE_FROM_PROTO.get(request.role, ""),
            expire_time=_timestamp(request.expire_time) if request.HasField("expire_time") else None,
            request_id=request.request_id,
            created_by=caller.principal,
            member=request.member,
            platform_operator=request.platform_operator,
        )
        return auth_service_pb2.CreateApiKeyResponse(key=key_to_proto(info), token=token)

    async def ListApiKeys(self, request: auth_service_pb2.ListApiKeysRequest, caller: KeyInfo):
        infos, next_token = await asyncio.to_thread(
            self.store.list, caller.project, request.page_size, request.page_token
        )
        return auth_service_pb2.ListApiKeysResponse(keys=[key_to_proto(i) for i in infos], next_page_token=next_token)

    async def RevokeApiKey(self, request: auth_service_pb2.RevokeApiKeyRequest, caller: KeyInfo):
        info = await asyncio.to_thread(self.store.revoke, caller.project, request.key_id)
        self.authenticator.forget(info.id)
        return auth_service_pb2.RevokeApiKeyResponse(key=key_to_proto(info))

    async def CreateToken(self, request: auth_service_pb2.CreateTokenRequest, caller: KeyInfo):
        ttl = request.ttl_seconds or DEFAULT_TOKEN_TTL
        violations = {}
        if not 1 <= ttl <= MAX_TOKEN_TTL:
            violations["ttl_seconds"] = f"must be 1..{MAX_TOKEN_TTL}"
        role = _ROLE_FROM_PROTO.get(request.role, caller.role) if request.role else caller.role
        if role not in ROLES or not role_at_least(caller.role, role):
            violations["role"] = f"may not exceed the caller's role ({caller.role})"
        if violations:
            raise InvalidArgument(violations)
        expires = int(time.time()) + ttl
        if caller.token_expire_time is not None:  # a token never outlives the token it was made with
            expires = min(expires, int(caller.token_expire_time.timestamp()))
        if caller.expire_time is not None:
            expires = min(expires, int(caller.expire_time.timestamp()))
        token = tokens.sign_short_lived(
            self.authenticator.signing_key, key_id=caller.id, project=caller.project, role=role, expires=expires
        )
        response = auth_service_pb2.CreateTokenResponse(token=token, project=caller.project, role=_ROLE_TO_PROTO[role])
        response.expire_time.FromDatetime(datetime.fromtimestamp(expires, UTC))
        return response

    def _platform_admin(self, caller: KeyInfo) -> bool:
        return caller.project == self.admin_project and caller.role == "admin"

    async def CreateProject(self, request: auth_service_pb2.CreateProjectRequest, caller: KeyInfo):
        if not self._platform_admin(caller):
            raise PermissionDenied(
                f"only admins of project {self.admin_project!r} may create projects",
                metadata={"admin_project": self.admin_project},
            )
        project, key, token = await asyncio.to_thread(
            self.tenancy.create_project,
            request.project_id,
            request.display_name,
            request.admin_key_name,
            caller.principal,
        )
        return auth_service_pb2.CreateProjectResponse(
            project=project_to_proto(project), admin_key=key_to_proto(key), admin_token=token
        )

    async def ListProjects(self, request: auth_service_pb2.ListProjectsRequest, caller: KeyInfo):
        only = None if self._platform_admin(caller) else caller.project
        if only is not None:
            await asyncio.to_thread(self.tenancy.ensure_project, only)
        infos, next_token = await asyncio.to_thread(
            self.tenancy.list_projects, only, request.page_size, request.page_token
        )
        return auth_service_pb2.ListProjectsResponse(
            projects=[project_to_proto(i) for i in infos], next_page_token=next_token
        )

    async def AddProjectMember(self, request: auth_service_pb2.AddProjectMemberRequest, caller: KeyInfo):
        info = await asyncio.to_thread(
            self.tenancy.add_member, caller.project, request.member, _ROLE_FROM_PROTO.get(request.role, "")
        )
        return auth_service_pb2.AddProjectMemberResponse(member=member_to_proto(info))

    async def ListProjectMembers(self, request: auth_service_pb2.ListProjectMembersRequest, caller: KeyInfo):
        infos, next_token = await asyncio.to_thread(
            self.tenancy.list_members, caller.project, request.page_size, request.page_token
        )
        return auth_service_pb2.ListProjectMembersResponse(
            members=[member_to_proto(i) for i in infos], next_page_token=next_token
        )

    async def RemoveProjectMember(self, request: auth_service_pb2.RemoveProjectMemberRequest, caller: KeyInfo):
        revoked = await asyncio.to_thread(self.tenancy.remove_member, caller.project, request.member)
        for key_id in revoked:
            self.authenticator.forget(key_id)
        return auth_service_pb2.RemoveProjectMemberResponse(revoked_key_ids=revoked)

    async def ListAuditEntries(self, request: auth_service_pb2.ListAuditEntriesRequest, caller: KeyInfo):
        infos, next_token = await asyncio.to_thread(
            self.tenancy.list_audit, caller.project, request.page_size, request.page_token, request.method_contains
        )
        return auth_service_pb2.ListAuditEntriesResponse(
            entries=[audit_to_proto(i) for i in infos], next_page_token=next_token
        )
