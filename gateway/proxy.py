"""The front door's request path: authenticate, authorise, then proxy raw bytes to a backend or
serve AuthService locally.

One grpc.GenericRpcHandler answers every fronted method. Proxied calls never decode the
messages: the server side hands over the request bytes untouched (no deserializer) and the
backend call sends them as they are (no serializer), in all four call shapes. The backend's
status code, details and trailing metadata (google.rpc details included) go back unchanged;
cancellation flows both ways; the client's deadline (or a default for unary calls) bounds the
backend call.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator, Mapping

import grpc
from google.protobuf import message_factory
from google.protobuf.message import Message

from gateway.auth import Authenticator
from gateway.keys import KeyInfo, role_at_least
from gateway.limits import RateLimiter, StreamLimiter, UploadTooLarge
from gateway.routes import ROUTES, Route
from gateway.servicer import AuthServicer
from gateway.tenancy import Tenancy
from kernel import fields, identity
from kernel.errors import PermissionDenied, TrainyardError, Unavailable, translate

log = logging.getLogger(__name__)

# Client metadata never forwarded: credentials, identity only the gateway may assert, transport keys.
_DROP = frozenset({"authorization", "user-agent", "te", "content-type", "host", *identity.IDENTITY_KEYS})


def _forwardable(key: str) -> bool:
    return key not in _DROP and not key.startswith((":", "grpc-"))


def _multicallable(channel: grpc.aio.Channel, route: Route):
    if route.client_streaming and route.server_streaming:
        return channel.stream_stream(route.path)
    if route.client_streaming:
        return channel.stream_unary(route.path)
    if route.server_streaming:
        return channel.unary_stream(route.path)
    return channel.unary_unary(route.path)


class Gateway(grpc.GenericRpcHandler):
    def __init__(
        self,
        *,
        channels: Mapping[str, grpc.aio.Channel],
        addresses: Mapping[str, str],
        authenticator: Authenticator,
        auth_servicer: AuthServicer,
        internal_token: str,
        default_deadline: float,
        rate_limiter: RateLimiter | None = None,
        routes: Mapping[str, Route] = ROUTES,
        stream_limiter: StreamLimiter | None = None,
        max_upload_bytes: int = 0,
        audit: Tenancy | None = None,
    ) -> None:
        self.channels = dict(channels)
        self.addresses = dict(addresses)
        self.authenticator = authenticator
        self.auth_servicer = auth_servicer
        self.internal_token = internal_token
        self.default_deadline = default_deadline
        self.rate_limiter = rate_limiter or RateLimiter(0, 1)
        self.routes = dict(routes)
        self.stream_limiter = stream_limiter or StreamLimiter(0)
        self.max_upload_bytes = max_upload_bytes
        self.audit = audit
        self._handlers: dict[str, grpc.RpcMethodHandler] = {}
        # One multi-callable per proxied method, without serializers: bytes in, bytes out.
        self._callables: dict[str, grpc.aio.UnaryUnaryMultiCallable] = {}
        for path, route in self.routes.items():
            channel = self.channels.get(route.backend or "")
            if channel is not None:
                self._callables[path] = _multicallable(channel, route)
        for path, route in self.routes.items():
            self._handlers[path] = self._local_handler(route) if route.backend is None else self._proxy_handler(route)

    # grpc.GenericRpcHandler: None -> UNIMPLEMENTED for anything not fronted.
    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        return self._handlers.get(handler_call_details.method)

    # -- shared steps ---------------------------------------------------------------------------
    async def _authenticate(self, context: grpc.aio.ServicerContext) -> KeyInfo:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        return await self.authenticator.authenticate(md, context.peer() or "")

    def _audited(self, route: Route) -> bool:
        return self.audit is not None and not route.read_only

    def _authorize(self, route: Route, caller: KeyInfo) -> None:
        self.rate_limiter.check(caller.id)
        if route.internal:
            raise PermissionDenied(
                f"{route.service}/{route.name} is internal: only the platform's own services call it",
                metadata={"method": route.path},
            )
        if not role_at_least(caller.role, route.min_role):
            raise PermissionDenied(
                f"role {caller.role} may not call {route.service}/{route.name}; it needs {route.min_role}",
                metadata={"method": route.path, "role": caller.role, "required_role": route.min_role},
            )

    def _outgoing_metadata(self, context: grpc.aio.ServicerContext, caller: KeyInfo) -> tuple[tuple[str, str], ...]:
        kept = tuple((k, v) for k, v in (context.invocation_metadata() or ()) if _forwardable(k))
        return kept + self._identity_metadata(caller.project, caller.principal, caller.role, caller.platform_operator)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one gateway per process; a few callers, hot path
    def _identity_metadata(
        self, project: str, principal: str, role: str, operator: bool
    ) -> tuple[tuple[str, str], ...]:
        who = identity.Identity(project=project, principal=principal, role=role, operator=operator)
        return identity.outgoing_metadata(who, self.internal_token)

    def _timeout(self, route: Route, context: grpc.aio.ServicerContext) -> float | None:
        remaining = context.time_remaining()
        if remaining is not None and remaining < 1e8:  # no client deadline reads as None (or "forever")
            return max(remaining, 0.0)
        if route.client_streaming or route.server_streaming:
            return None  # uploads and watches last as long as the client wants
        return self.default_deadline

    @staticmethod
    def _missing_backend(route: Route) -> Unavailable:
        return Unavailable(
            f"{route.service} is not available: the gateway has no address for the {route.backend} service "
            f"(TRAINYARD_{(route.backend or '').upper()}_ADDRESS)",
            metadata={"service": route.service},
        )

    async def _fail(self, route: Route, context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        """Answer with the status `exc` stands for; never returns."""
        if isinstance(exc, grpc.aio.AioRpcError):
            trailing = tuple(exc.trailing_metadata() or ())
            details = exc.details() or ""
            if exc.code() == grpc.StatusCode.UNAVAILABLE and not trailing:
                # No trailers: the backend never answered (down, unreachable), not a status it chose.
                details = (
                    f"{route.service} is unavailable: cannot reach the {route.backend} service "
                    f"at {self.addresses.get(route.backend or '', '?')} ({details})"
                )
                log.warning("backend unavailable", extra={"backend": route.backend, "method": route.path})
            await context.abort(exc.code(), details, trailing_metadata=trailing)
        mapped = translate(exc)  # domain errors, and the gateway's own database away -> UNAVAILABLE
        if mapped is not None:
            await context.abort_with_status(mapped.to_status())
        log.exception("unhandled error in gateway for %s", route.path)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in the gateway for {route.path}")

    @staticmethod
    async def _relay_initial_metadata(call, context: grpc.aio.ServicerContext) -> None:
        md = await call.initial_metadata()
        if md:
            await context.send_initial_metadata(tuple(md))

    # -- audit --------------------------------------------------------------------------------
    async def _record(self, route: Route, caller: KeyInfo | None, target: str, exc: BaseException | None) -> None:
        """Write the audit entry of a mutating call (who, what, when, result); never fails the call."""
        if caller is None or not self._audited(route):
            return
        code, message = _result(exc)
        try:
            await asyncio.to_thread(self.audit.record, caller, route.path, target, code, message)
        except Exception:  # noqa: BLE001 - the call itself is done; losing its entry is logged loudly
            log.exception("cannot write the audit entry", extra={"method": route.path, "key_id": caller.id})

    # -- proxied calls --------------------------------------------------------------------------
    def _proxy_handler(self, route: Route) -> grpc.RpcMethodHandler:
        if not route.client_streaming and not route.server_streaming:
            return grpc.unary_unary_rpc_method_handler(self._unary_response(route))
        if route.client_streaming and not route.server_streaming:
            return grpc.stream_unary_rpc_method_handler(self._unary_response(route))
        if not route.client_streaming:
            return grpc.unary_stream_rpc_method_handler(self._stream_response(route))
        return grpc.stream_stream_rpc_method_handler(self._stream_response(route))

    def _start_call(self, route: Route, request, context: grpc.aio.ServicerContext, caller: KeyInfo):
        callable_ = self._callables.get(route.path)
        if callable_ is None:
            raise self._missing_backend(route)
        return callable_(
            request, timeout=self._timeout(route, context), metadata=self._outgoing_metadata(context, caller)
        )

    def _limit_upload(self, route: Route, request, audit: dict) -> AsyncIterator[bytes] | bytes:
        """Count a client stream's bytes; past max_upload_bytes the call is cancelled (see _upload_failure)."""
        audited = self._audited(route)  # reads are not audited: no need to decode their request
        if not route.client_streaming:
            if audited:
                audit["target"] = _target(route, request)
            return request
        limit = self.max_upload_bytes

        async def counted():
            total = 0
            async for chunk in request:
                if audited and total == 0 and not audit.get("target"):
                    audit["target"] = _target(route, chunk)
                total += len(chunk)
                if limit and total > limit:
                    audit["too_large"] = total
                    if audit.get("call") is not None:
                        audit["call"].cancel()
                    return
                yield chunk

        return counted()

    def _upload_failure(self, audit: dict) -> UploadTooLarge | None:
        if "too_large" in audit:
            return UploadTooLarge(self.max_upload_bytes)
        return None

    def _unary_response(self, route: Route):
        async def handle(request: bytes | AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> bytes:
            call, caller, audit = None, None, {}
            entered = False
            try:
                caller = await self._authenticate(context)
                self._authorize(route, caller)
                if route.client_streaming:
                    self.stream_limiter.enter(caller.id)
                    entered = True
                call = self._start_call(route, self._limit_upload(route, request, audit), context, caller)
                audit["call"] = call
                try:
                    response = await call
                except (grpc.aio.AioRpcError, asyncio.CancelledError):
                    failure = self._upload_failure(audit)
                    if failure is not None:
                        raise failure from None
                    raise
                # Relayed once the response is in: one wake-up per call instead of two.
                await self._relay_initial_metadata(call, context)
                trailing = await call.trailing_metadata()
                if trailing:
                    context.set_trailing_metadata(tuple(trailing))
                await self._record(route, caller, audit.get("target", ""), None)
                return response
            except (grpc.aio.AbortError, asyncio.CancelledError) as exc:
                await self._record(route, caller, audit.get("target", ""), exc)
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                await self._record(route, caller, audit.get("target", ""), exc)
                await self._fail(route, context, exc)
            finally:
                if entered:
                    self.stream_limiter.leave(caller.id)  # type: ignore[union-attr]
                if call is not None and not call.done():
                    call.cancel()  # the client went away: stop the backend's work too

        return handle

    def _stream_response(self, route: Route):
        async def handle(request, context: grpc.aio.ServicerContext):
            call, caller, audit = None, None, {}
            entered = False
            try:
                caller = await self._authenticate(context)
                self._authorize(route, caller)
                self.stream_limiter.enter(caller.id)
                entered = True
                call = self._start_call(route, self._limit_upload(route, request, audit), context, caller)
                audit["call"] = call
                await self._relay_initial_metadata(call, context)
                try:
                    async for response in call:
                        yield response
                except (grpc.aio.AioRpcError, asyncio.CancelledError):
                    failure = self._upload_failure(audit)
                    if failure is not None:
                        raise failure from None
                    raise
                trailing = await call.trailing_metadata()
                if trailing:
                    context.set_trailing_metadata(tuple(trailing))
                await self._record(route, caller, audit.get("target", ""), None)
            except (grpc.aio.AbortError, asyncio.CancelledError, GeneratorExit) as exc:
                if not isinstance(exc, GeneratorExit):
                    await self._record(route, caller, audit.get("target", ""), exc)
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                await self._record(route, caller, audit.get("target", ""), exc)
                await self._fail(route, context, exc)
            finally:
                if entered:
                    self.stream_limiter.leave(caller.id)  # type: ignore[union-attr]
                if call is not None and not call.done():
                    call.cancel()

        return handle

    # -- served here ----------------------------------------------------------------------------
    def _local_handler(self, route: Route) -> grpc.RpcMethodHandler:
        request_cls = message_factory.GetMessageClass(route.descriptor.input_type)
        method = getattr(self.auth_servicer, route.name)

        async def handle(request, context: grpc.aio.ServicerContext):
            caller = None
            target = _fields_target(request)
            try:
                caller = await self._authenticate(context)
                self._authorize(route, caller)
                fields.check_lengths(request)
                response = await method(request, caller)
                await self._record(route, caller, target, None)
                return response
            except (grpc.aio.AbortError, asyncio.CancelledError) as exc:
                await self._record(route, caller, target, exc)
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                await self._record(route, caller, target, exc)
                await self._fail(route, context, exc)

        return grpc.unary_unary_rpc_method_handler(
            handle,
            request_deserializer=request_cls.FromString,
            response_serializer=lambda message: message.SerializeToString(),
        )


_TARGET_FIELDS = ("name", "member", "project_id", "role")


def _fields_target(message: Message, depth: int = 0) -> str:
    """'field=value' pairs of the ids and names a request names (one level of nesting)."""
    parts = []
    for field, value in message.ListFields():
        if field.message_type is not None and not getattr(field, "is_repeated", False) and depth == 0:
            inner = _fields_target(value, depth + 1)
            if inner:
                parts.append(inner)
        elif isinstance(value, str) and (field.name.endswith("_id") or field.name in _TARGET_FIELDS):
            if field.name != "request_id":
                parts.append(f"{field.name}={value[:100]}")
    return " ".join(parts)


def _target(route: Route, data: bytes) -> str:
    try:
        request_cls = message_factory.GetMessageClass(route.descriptor.input_type)
        return _fields_target(request_cls.FromString(data))
    except Exception:  # noqa: BLE001 - a request the backend will refuse anyway
        return ""


def _result(exc: BaseException | None) -> tuple[str, str]:
    if exc is None:
        return "OK", ""
    if isinstance(exc, grpc.aio.AioRpcError):
        return exc.code().name, exc.details() or ""
    if isinstance(exc, TrainyardError):
        return exc.code.name, exc.message
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED", "the client cancelled the call"
    if isinstance(exc, grpc.aio.AbortError):
        return "ABORTED_BY_GATEWAY", ""
    return "INTERNAL", type(exc).__name__
