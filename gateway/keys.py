"""API keys: create, verify, list, revoke; stored in SQL with only the secret's hash.

Plain, synchronous domain code (the servicer runs it in a thread). Raises kernel.errors.
A retried CreateApiKey (same request_id in the project, same name/role/expiry) returns the same
key with a fresh secret: the first token was never seen by the caller, and a token is shown only once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway import paging, tokens
from gateway.models import GatewayApiKey
from kernel import fields
from kernel.errors import InvalidArgument, NotFound, Unauthenticated

ROLES = ("viewer", "editor", "admin")
_RANK = {role: i for i, role in enumerate(ROLES)}
MAX_NAME, MAX_REQUEST_ID = fields.MAX_NAME, fields.MAX_REQUEST_ID

# One message for every way a credential can fail, so a caller learns nothing about which.
UNAUTHENTICATED_MESSAGE = "missing or invalid credentials: send 'authorization: Bearer <api token>'"


def role_at_least(role: str, needed: str) -> bool:
    return _RANK.get(role, -1) >= _RANK[needed]


def utcnow() -> datetime:
    return datetime.now(UTC)


def _utc(dt: datetime | None) -> datetime | None:
    """Aware UTC (sqlmodel stores aware datetimes; naive ones are taken as UTC)."""
    if dt is None:
        return None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


@dataclass(frozen=True)
class KeyInfo:
    """A key as callers may see it (no secret)."""

    id: str
    project: str
    role: str
    name: str
    create_time: datetime
    expire_time: datetime | None
    revoked: bool
    created_by: str
    member: str | None = None
    # Set when the caller authenticated with a short-lived token derived from this key.
    token_expire_time: datetime | None = None
    platform_operator: bool = False

    @property
    def principal(self) -> str:
        return f"member:{self.member}" if self.member else f"apikey:{self.id}"

    @classmethod
    def from_row(cls, row: GatewayApiKey) -> KeyInfo:
        return cls(
            id=row.id,
            project=row.project,
            role=row.role,
            name=row.name,
            create_time=_utc(row.create_time),  # type: ignore[arg-type]
            expire_time=_utc(row.expire_time),
            revoked=row.revoked,
            created_by=row.created_by,
            member=row.member,
            platform_operator=bool(row.platform_operator),
        )

    def usable(self, now: datetime) -> bool:
        if self.token_expire_time is not None and self.token_expire_time <= now:
            return False
        return not self.revoked and (self.expire_time is None or self.expire_time > now)


class KeyStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- hot path -------------------------------------------------------------------------------
    def verify(self, token: str, now: datetime | None = None) -> KeyInfo:
        """The key a token belongs to; Unauthenticated (one message) for any failure."""
        now = now or utcnow()
        parsed = tokens.parse_token(token)
        if parsed is None:
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        key_id, secret = parsed
        with Session(self.engine) as session:
            row = session.get(GatewayApiKey, key_id)
            stored = row.secret_sha256 if row is not None else "0" * 64
            # Compare even when the key is unknown, so timing says nothing about which ids exist.
            matches = tokens.secret_matches(secret, stored)
            if row is None or not matches:
                raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
            info = KeyInfo.from_row(row)
        if not info.usable(now):
            raise Unauthenticated(UNAUTHENTICATED_MESSAGE)
        return info

    # -- management -----------------------------------------------------------------------------
    def create(
        self,
        *,
        project: str,
        name: str,
        role: str,
        expire_time: datetime | None = None,
        request_id: str = "",
        created_by: str = "",
        member: str = "",
        platform_operator: bool = False,
        now: datetime | None = None,
    ) -> tuple[KeyInfo, str]:
        """A new key of the project and its token (shown only here)."""
        now = now or utcnow()
        violations: dict[str, str] = {}
        if member:
            member_role = self._member_role(project, member)
            if member_role is None:
                raise NotFound(f"member {member!r} not found in project {project!r}", metadata={"member": member})
            if role in ROLES and not role_at_least(member_role, role):
                violations["role"] = f"exceeds the role of member {member!r} ({member_role})"
        name = name.strip()
        why = fields.name_violation(name)
        if why is not None:
            violations["name"] = why
        if role not in ROLES:
            violations["role"] = "required: ROLE_VIEWER, ROLE_EDITOR or ROLE_ADMIN"
        if expire_time is not None and expire_time <= now:
            violations["expire_time"] = "must be in the future"
        if len(request_id) > MAX_REQUEST_ID:
            violations["request_id"] = f"must be at most {MAX_REQUEST_ID} characters"
        if violations:
            raise InvalidArgument(violations)
        secret = tokens.new_secret()
        if request_id:
            retried = self._replayed(project, request_id, name, role, expire_time, secret, platform_operator)
            if retried is not None:
                return retried, tokens.format_token(retried.id, secret)
        row = GatewayApiKey(
            id=tokens.new_key_id(),
            project=project,
            role=role,
            name=name,
            secret_sha256=tokens.hash_secret(secret),
            create_time=_utc(now),  # type: ignore[arg-type]
            expire_time=_utc(expire_time),
            created_by=created_by,
            request_id=request_id or None,
            member=member or None,
            platform_operator=platform_operator,
        )
        try:
            with Session(self.engine) as session:
                session.add(row)
                session.commit()
                session.refresh(row)
                info = KeyInfo.from_row(row)
        except IntegrityError:
            # A concurrent create with the same request_id won; answer as its retry.
            retried = (
                self._replayed(project, request_id, name, role, expire_time, secret, platform_operator)
                if request_id
                else None
            )
            if retried is None:
                raise
            return retried, tokens.format_token(retried.id, secret)
        return info, tokens.format_token(info.id, secret)

    def _replayed(
        self,
        project: str,
        request_id: str,
        name: str,
        role: str,
        expire_time: datetime | None,
        secret: str,
        platform_operator: bool,
    ) -> KeyInfo | None:
        """The key an earlier create with this request_id made (the answer to a resent request; not a retry
        loop), or None."""
        with Session(self.engine) as session:
            row = session.exec(
                select(GatewayApiKey).where(GatewayApiKey.project == project, GatewayApiKey.request_id == request_id)
            ).first()
            if row is None:
                return None
            if (row.name, row.role, _utc(row.expire_time), bool(row.platform_operator)) != (
                name,
                role,
                _utc(expire_time),
                platform_operator,
            ):
                raise InvalidArgument({"request_id": "already used for a key with a different name, role or expiry"})
            if row.revoked:
                raise InvalidArgument({"request_id": f"already used for key {row.id}, which is revoked"})
            row.secret_sha256 = tokens.hash_secret(secret)
            session.add(row)
            session.commit()
            session.refresh(row)
            return KeyInfo.from_row(row)

    def _member_role(self, project: str, member: str) -> str | None:
        from gateway.models import GatewayProjectMember

        with Session(self.engine) as session:
            row = session.get(GatewayProjectMember, (project, member))
            return row.role if row is not None else None

    def by_id(self, key_id: str) -> KeyInfo | None:
        """Any project's key by id (for verifying tokens derived from it); None when unknown."""
        with Session(self.engine) as session:
            row = session.get(GatewayApiKey, key_id)
            return KeyInfo.from_row(row) if row is not None else None

    def revoke_member_keys(self, project: str, member: str, now: datetime | None = None) -> list[str]:
        """Revoke every key issued to a member; returns their ids."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(GatewayApiKey).where(GatewayApiKey.project == project, GatewayApiKey.member == member)
            ).all()
            revoked = []
            for row in rows:
                if not row.revoked:
                    row.revoked = True
                    row.revoke_time = _utc(now or utcnow())
                    session.add(row)
                    revoked.append(row.id)
            session.commit()
        return revoked

    def get(self, project: str, key_id: str) -> KeyInfo:
        with Session(self.engine) as session:
            row = session.get(GatewayApiKey, key_id)
            if row is None or row.project != project:
                raise NotFound(f"api key {key_id!r} not found")
            return KeyInfo.from_row(row)

    def list(self, project: str, page_size: int = 0, page_token: str = "") -> tuple[list[KeyInfo], str]:
        size = paging.page_size(page_size)
        offset = paging.decode_page(page_token, "ListApiKeys")
        with Session(self.engine) as session:
            rows = session.exec(
                select(GatewayApiKey)
                .where(GatewayApiKey.project == project)
                .order_by(col(GatewayApiKey.create_time), col(GatewayApiKey.id))
                .offset(offset)
                .limit(size + 1)
            ).all()
            infos = [KeyInfo.from_row(r) for r in rows[:size]]
        return infos, (paging.encode_page(offset + size) if len(rows) > size else "")

    def revoke(self, project: str, key_id: str, now: datetime | None = None) -> KeyInfo:
        """Revoke a key of the project (again is fine)."""
        if not key_id:
            raise InvalidArgument({"key_id": "required"})
        with Session(self.engine) as session:
            row = session.get(GatewayApiKey, key_id)
            if row is None or row.project != project:
                raise NotFound(f"api key {key_id!r} not found")
            if not row.revoked:
                row.revoked = True
                row.revoke_time = _utc(now or utcnow())
                session.add(row)
                session.commit()
                session.refresh(row)
            return KeyInfo.from_row(row)

    def upsert_bootstrap(self, token: str, project: str, now: datetime | None = None) -> KeyInfo:
        """Make `token` an admin key of `project` and a platform operator's (the local stack's first key),
        whatever it was before."""
        parsed = tokens.parse_token(token)
        if parsed is None:
            raise InvalidArgument({"bootstrap_token": "expected ty_<key_id>_<secret>"})
        key_id, secret = parsed
        with Session(self.engine) as session:
            row = session.get(GatewayApiKey, key_id)
            if row is None:
                row = GatewayApiKey(
                    id=key_id,
                    project=project,
                    role="admin",
                    name="bootstrap",
                    secret_sha256="",
                    create_time=_utc(now or utcnow()),  # type: ignore[arg-type]
                    created_by="bootstrap",
                )
            row.project = project
            row.role = "admin"
            row.platform_operator = True
            row.secret_sha256 = tokens.hash_secret(secret)
            row.revoked = False
            row.revoke_time = None
            row.expire_time = None
            session.add(row)
            session.commit()
            session.refresh(row)
            return KeyInfo.from_row(row)
