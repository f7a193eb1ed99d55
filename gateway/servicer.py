"""AuthService, served by the gateway itself: thin proto <-> keys.KeyStore, scoped to the caller's project."""

from __future__ import annotations

import asyncio
from datetime import UTC

from google.protobuf import timestamp_pb2

from gateway.auth import Authenticator
from gateway.keys import KeyInfo, KeyStore
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
    )
    key.create_time.FromDatetime(info.create_time)
    if info.expire_time is not None:
        key.expire_time.FromDatetime(info.expire_time)
    return key


def _timestamp(ts: timestamp_pb2.Timestamp):
    return ts.ToDatetime(tzinfo=UTC)


class AuthServicer:
    """Each method takes the request and the verified caller (the gateway has authorised the call)."""

    def __init__(self, store: KeyStore, authenticator: Authenticator) -> None:
        self.store = store
        self.authenticator = authenticator

    async def WhoAmI(self, request: auth_service_pb2.WhoAmIRequest, caller: KeyInfo):
        return auth_service_pb2.WhoAmIResponse(key=key_to_proto(caller))

    async def CreateApiKey(self, request: auth_service_pb2.CreateApiKeyRequest, caller: KeyInfo):
        info, token = await asyncio.to_thread(
            self.store.create,
            project=caller.project,
            name=request.name,
            role=_ROLE_FROM_PROTO.get(request.role, ""),
            expire_time=_timestamp(request.expire_time) if request.HasField("expire_time") else None,
            request_id=request.request_id,
            created_by=caller.principal,
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
