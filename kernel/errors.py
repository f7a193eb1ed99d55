"""Domain errors that know their gRPC status (AIP-193).

Domain code raises these; one server interceptor turns them into a status with
google.rpc details (BadRequest field violations, ErrorInfo). No handler picks a code by hand.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

DOMAIN = "trainyard.dev"

# A status travels in HTTP/2 trailers: grpc-message (percent-encoded) and grpc-status-details-bin (the
# google.rpc.Status, base64). gRPC refuses trailers past 8 KiB (soft) / 16 KiB (hard), and a refused one
# reaches the client as RESOURCE_EXHAUSTED "received metadata size exceeds ..." instead of the cause.
# So every status is cut to fit well under: the message, the number and length of field violations, the
# ErrorInfo metadata. Whatever is cut says so ("... and N more"); full lists live elsewhere (import reports).
MAX_MESSAGE_BYTES = 1024  # grpc-message, percent-encoded
MAX_STATUS_BYTES = 3072  # the serialized google.rpc.Status (4 KiB once base64-encoded)
MAX_VIOLATIONS = 20
MAX_FIELD_CHARS = 200
MAX_DESCRIPTION_CHARS = 400
MAX_METADATA_ENTRIES = 8
MAX_METADATA_CHARS = 200


def _encoded_size(text: str) -> int:
    """Bytes of `text` as grpc-message: printable ASCII but '%' as is, every other byte as %XX."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in text.encode())


def cut(text: str, limit: int) -> str:
    """`text` up to `limit` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    suffix = f" ... ({len(text) - limit} more characters)"
    return text[: max(limit - len(suffix), 0)] + suffix


def fit_message(message: str, limit: int = MAX_MESSAGE_BYTES) -> str:
    """The message cut to fit `limit` percent-encoded bytes (whole characters, saying how much was cut)."""
    if len(message) * 9 <= limit or _encoded_size(message) <= limit:  # 9: the most a character can take
        return message
    lo, hi = 0, len(message)
    while lo < hi:  # the longest prefix that fits with its suffix
        mid = (lo + hi + 1) // 2
        if _encoded_size(message[:mid] + f" ... ({len(message) - mid} more characters)") <= limit:
            lo = mid
        else:
            hi = mid - 1
    return message[:lo] + f" ... ({len(message) - lo} more characters)"


class TrainyardError(Exception):
    code: grpc.StatusCode = grpc.StatusCode.INTERNAL
    reason: str = "INTERNAL"

    def __init__(self, message: str, *, reason: str | None = None, metadata: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        if reason:
            self.reason = reason
        self.metadata = dict(metadata or {})

    def details(self, shown: int = MAX_VIOLATIONS) -> list[any_pb2.Any]:
        """google.rpc details; `shown` bounds the number of list entries (field violations) carried."""
        items = list(self.metadata.items())
        metadata = {cut(k, 64): cut(str(v), MAX_METADATA_CHARS) for k, v in items[:MAX_METADATA_ENTRIES]}
        if len(items) > MAX_METADATA_ENTRIES:
            metadata["more"] = f"and {len(items) - MAX_METADATA_ENTRIES} more"
        info = any_pb2.Any()
        info.Pack(error_details_pb2.ErrorInfo(reason=self.reason, domain=DOMAIN, metadata=metadata))
        return [info]

    def to_status(self) -> grpc.Status:
        """The status, cut to fit gRPC's trailers (see MAX_STATUS_BYTES)."""
        message = fit_message(self.message)
        for shown in (MAX_VIOLATIONS, 5, 1, 0):
            status = status_pb2.Status(code=self.code.value[0], message=message, details=self.details(shown))
            if status.ByteSize() <= MAX_STATUS_BYTES:
                break
        return rpc_status.to_status(status)


class InvalidArgument(TrainyardError):
    """Bad input; carries one field violation per bad field."""

    code = grpc.StatusCode.INVALID_ARGUMENT
    reason = "INVALID_ARGUMENT"

    def __init__(self, violations: Mapping[str, str], message: str | None = None, **kw) -> None:
        self.violations = dict(violations)
        summary = "; ".join(f"{f}: {d}" for f, d in self.violations.items())
        super().__init__(message or f"invalid request: {summary}", **kw)

    def details(self, shown: int = MAX_VIOLATIONS) -> list[any_pb2.Any]:
        items = list(self.violations.items())
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(
                    field=cut(f, MAX_FIELD_CHARS), description=cut(d, MAX_DESCRIPTION_CHARS)
                )
                for f, d in items[:shown]
            ]
        )
        if len(items) > shown:
            bad.field_violations.add(field="...", description=f"and {len(items) - shown} more")
        packed = any_pb2.Any()
        packed.Pack(bad)
        return [packed, *super().details(shown)]


def require(**fields: str) -> None:
    """INVALID_ARGUMENT naming each empty required id: an empty id is a bad request, not an unknown resource."""
    missing = {name: "required" for name, value in fields.items() if not value}
    if missing:
        raise InvalidArgument(missing)


class NotFound(TrainyardError):
    code = grpc.StatusCode.NOT_FOUND
    reason = "NOT_FOUND"


class AlreadyExists(TrainyardError):
    code = grpc.StatusCode.ALREADY_EXISTS
    reason = "ALREADY_EXISTS"


class FailedPrecondition(TrainyardError):
    code = grpc.StatusCode.FAILED_PRECONDITION
    reason = "FAILED_PRECONDITION"


class PermissionDenied(TrainyardError):
    code = grpc.StatusCode.PERMISSION_DENIED
    reason = "PERMISSION_DENIED"


class Unauthenticated(TrainyardError):
    code = grpc.StatusCode.UNAUTHENTICATED
    reason = "UNAUTHENTICATED"


class ResourceExhausted(TrainyardError):
    code = grpc.StatusCode.RESOURCE_EXHAUSTED
    reason = "RESOURCE_EXHAUSTED"


class Unavailable(TrainyardError):
    code = grpc.StatusCode.UNAVAILABLE
    reason = "UNAVAILABLE"


class Aborted(TrainyardError):
    code = grpc.StatusCode.ABORTED
    reason = "ABORTED"


class DeadlineExceeded(TrainyardError):
    code = grpc.StatusCode.DEADLINE_EXCEEDED
    reason = "DEADLINE_EXCEEDED"


def from_rpc_error(exc: grpc.RpcError, what: str) -> TrainyardError:
    """The domain error for a failed call to another service (`what` names it): its own code where the
    caller can act on it, UNAVAILABLE for the rest (the other service's outage is ours)."""
    code = exc.code() if hasattr(exc, "code") else None
    detail = exc.details() if hasattr(exc, "details") else str(exc)
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        return InvalidArgument({what: detail or "rejected"})
    passed_on = {
        grpc.StatusCode.NOT_FOUND: NotFound,
        grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
        grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
        grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
        grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    }
    cls = passed_on.get(code)
    if cls is None:
        return Unavailable(f"{what}: {detail}")
    return cls(f"{what}: {detail}" if cls is DeadlineExceeded else (detail or what))


def translate(exc: BaseException) -> TrainyardError | None:
    """The domain error an infrastructure exception stands for (None: a bug, INTERNAL).

    A database that cannot be reached, restarts, or drops a connection mid-query is a transient
    outage: UNAVAILABLE (reason DATABASE_UNAVAILABLE), so clients retry; the pool (pool_pre_ping)
    replaces dead connections on the next call. So is an unreachable object store
    (OBJECT_STORE_UNAVAILABLE).
    """
    if isinstance(exc, TrainyardError):
        return exc
    import sqlalchemy.exc as sa_exc  # here: errors.py stays importable without SQLAlchemy loaded

    if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)) or (
        isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated
    ):
        cause = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:200]
        return Unavailable(f"the database is unavailable ({cause}); retry shortly", reason="DATABASE_UNAVAILABLE")
    import urllib3.exceptions
    from minio.error import InvalidResponseError, S3Error, ServerError

    from kernel import objectstore

    # An object store that is away or overloaded mid-request (a preview, an export): the same, not INTERNAL.
    if isinstance(exc, (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError)) and (
        objectstore.is_transient(exc)
    ):
        return Unavailable(
            f"the object store is unavailable ({objectstore.describe(exc)}); retry shortly",
            reason="OBJECT_STORE_UNAVAILABLE",
        )
    return None


def field_violations(error: grpc.RpcError) -> dict[str, str]:
    """Field violations carried by a failed call's status (empty when none); for clients and tests."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    if status is None:
        return {}
    out: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            out.update({v.field: v.description for v in bad.field_violations})
    return out


def error_reason(error: grpc.RpcError) -> str:
    """ErrorInfo.reason of a failed call ('' when none)."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    for detail in status.details if status else []:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            return info.reason
    return ""


assert code_pb2.INVALID_ARGUMENT == grpc.StatusCode.INVALID_ARGUMENT.value[0]
