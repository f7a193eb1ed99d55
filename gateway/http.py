"""The gateway's HTTP port: Connect (unary and streaming, JSON and binary), gRPC-Web and JSON over HTTP for
browsers, curl and the generated TypeScript client, and the console's static files.

connectrpc's ASGI application speaks the protocols (envelopes, codecs, compression, timeouts, the error
JSON); each endpoint runs the very handler the gRPC port runs (`Gateway.service(path)`) with an HTTP call's
context standing in for grpc's, so authentication, roles, internal methods, rate and stream limits, upload
limits, audit and error details are the gRPC port's own, not a copy. Messages stay bytes on the way through
as on the gRPC port; JSON is translated at the edge from the generated descriptors.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import uvicorn
from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import IdempotencyLevel, MethodInfo, StreamType
from connectrpc.request import RequestContext
from connectrpc.server import ConnectASGIApplication, Endpoint
from google.protobuf import json_format, message_factory
from google.protobuf.message import Message
from google.rpc import status_pb2
from protobuf.wkt import Any as WireAny
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

from gateway.proxy import Gateway
from gateway.routes import Route

log = logging.getLogger(__name__)

CONSOLE_DIR = Path(__file__).resolve().parents[1] / "console" / "dist"

# HTTP request headers that are transport or browser business, never call metadata for the services.
_HTTP_ONLY = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "content-length",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "upgrade",
        "origin",
        "referer",
        "cookie",
        "user-agent",
        "x-user-agent",
        "x-grpc-web",
        "cache-control",
        "pragma",
        "priority",
        "dnt",
    }
)
_HTTP_ONLY_PREFIXES = ("accept", "connect-", "sec-", "x-forwarded-", "access-control-", "grpc-", "te")
# Connect names for grpc codes where they differ (CANCELLED is spelt CANCELED).
_CODES = {
    status: Code[status.name.replace("CANCELLED", "CANCELED")] for status in grpc.StatusCode if status.name != "OK"
}
_DETAILS_KEY = "grpc-status-details-bin"
# What a browser page on another origin may send and read, when CORS is on (the Connect protocol's headers).
CORS_ALLOW_HEADERS = [
    "authorization",
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "connect-accept-encoding",
    "connect-content-encoding",
    "grpc-timeout",
    "x-grpc-web",
    "x-user-agent",
]
CORS_EXPOSE_HEADERS = ["grpc-status", "grpc-message", "grpc-status-details-bin", "content-encoding"]
# The console is self-contained: nothing it loads comes from another origin.
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; style-src 'self'; object-src 'none'; "
        b"base-uri 'none'; frame-ancestors 'none'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


@dataclass(slots=True, frozen=True)
class Reply:
    """A response message as the gateway relays it: serialized bytes and the type they decode to."""

    data: bytes
    message_class: type[Message]


class BinaryCodec:
    """application/proto: bytes pass through untouched, as on the gRPC port."""

    def name(self) -> str:
        return "proto"

    def encode(self, message: Reply) -> bytes:
        return message.data

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> bytes:
        return bytes(data)


class JsonCodec:
    """application/json: the proto3 JSON mapping, read into the request type and sent on as bytes. Unknown
    fields are refused (a misspelt field is an error naming it, not a silently empty request)."""

    def name(self) -> str:
        return "json"

    def encode(self, message: Reply) -> bytes:
        return json_format.MessageToJson(message.message_class.FromString(message.data), indent=None).encode()

    def decode(self, data: bytes | bytearray, message_class: type[Message]) -> bytes:
        request = message_class()
        try:
            json_format.Parse(bytes(data) or b"{}", request)
        except json_format.ParseError as exc:
            raise ConnectError(
                Code.INVALID_ARGUMENT,
                f"request body is not a {message_class.DESCRIPTOR.full_name} in JSON: {str(exc).splitlines()[0]}",
            ) from None
        return request.SerializeToString()


class HttpAbort(grpc.aio.AbortError):
    """context.abort() of an HTTP call: the gateway's handlers treat it as grpc's own abort."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing: Iterable[tuple[str, str | bytes]]) -> None:
        super().__init__(details)
        self.code = code
        self.details = details
        self.trailing = tuple(trailing or ())

    def connect_error(self) -> ConnectError:
        details = []
        for key, value in self.trailing:
            if key == _DETAILS_KEY and isinstance(value, bytes):
                status = status_pb2.Status.FromString(value)
                details = [ErrorDetail(WireAny(type_url=d.type_url, value=d.value)) for d in status.details]
        return ConnectError(_CODES.get(self.code, Code.UNKNOWN), self.details, details)


def _header_value(key: str, value: str | bytes) -> str:
    if isinstance(value, bytes):
        return base64.b64encode(value).decode().rstrip("=")
    return value


class HttpCallContext:
    """The part of grpc.aio.ServicerContext the gateway's handlers use, over a Connect request context."""

    def __init__(self, ctx: RequestContext) -> None:
        self._ctx = ctx
        metadata: list[tuple[str, str | bytes]] = []
        for key, value in ctx.request_headers.allitems():
            if key in _HTTP_ONLY or key.startswith(_HTTP_ONLY_PREFIXES):
                continue
            if key.endswith("-bin"):
                try:
                    metadata.append((key, base64.b64decode(value + "=" * (-len(value) % 4))))
                except ValueError:
                    continue
            else:
                metadata.append((key, value))
        self._metadata = tuple(metadata)

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def peer(self) -> str:
        address = self._ctx.client_address or ""
        host, _, port = address.rpartition(":")
        if not host:
            return ""
        return f"ipv6:[{host}]:{port}" if ":" in host else f"ipv4:{host}:{port}"

    def time_remaining(self) -> float | None:
        remaining = self._ctx.timeout_ms
        return None if remaining is None else max(remaining / 1000, 0.0)

    async def send_initial_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        for key, value in metadata:
            self._ctx.response_headers.add(key, _header_value(key, value))

    def set_trailing_metadata(self, metadata: Iterable[tuple[str, str | bytes]]) -> None:
        for key, value in metadata:
            if key != _DETAILS_KEY:
                self._ctx.response_trailers.add(key, _header_value(key, value))

    async def abort(self, code: grpc.StatusCode, details: str = "", trailing_metadata=()) -> None:
        raise HttpAbort(code, details, trailing_metadata)

    async def abort_with_status(self, status: grpc.Status) -> None:
        raise HttpAbort(status.code, status.details, status.trailing_metadata)


def _stream_type(route: Route) -> StreamType:
    if route.client_streaming and route.server_streaming:
        return StreamType.BIDI_STREAM
    if route.client_streaming:
        return StreamType.CLIENT_STREAM
    if route.server_streaming:
        return StreamType.SERVER_STREAM
    return StreamType.UNARY


def _endpoint(gateway: Gateway, route: Route) -> Endpoint:
    """The Connect endpoint of one fronted method: the gRPC port's handler for it, called with an HTTP context."""
    handler = gateway.service(_Details(route.path))
    output = message_factory.GetMessageClass(route.descriptor.output_type)
    method = MethodInfo(
        name=route.name,
        service_name=route.service,
        input=message_factory.GetMessageClass(route.descriptor.input_type),
        output=output,
        idempotency_level=IdempotencyLevel.NO_SIDE_EFFECTS if route.read_only else IdempotencyLevel.UNKNOWN,
        stream_type=_stream_type(route),
    )
    # Proxied methods take and give bytes; AuthService's (served by the gateway itself) take messages.
    deserialize = handler.request_deserializer or (lambda data: data)
    serialize = handler.response_serializer or (lambda data: data)

    async def requests(stream: AsyncIterator[bytes]) -> AsyncIterator:
        async for data in stream:
            yield deserialize(data)

    async def unary(request: bytes, ctx: RequestContext) -> Reply:
        try:
            return Reply(serialize(await handler.unary_unary(deserialize(request), HttpCallContext(ctx))), output)
        except HttpAbort as exc:
            raise exc.connect_error() from None

    async def client_stream(stream: AsyncIterator[bytes], ctx: RequestContext) -> Reply:
        try:
            return Reply(serialize(await handler.stream_unary(requests(stream), HttpCallContext(ctx))), output)
        except HttpAbort as exc:
            raise exc.connect_error() from None

    async def relay(responses: AsyncIterator) -> AsyncIterator[Reply]:
        try:
            async for response in responses:
                yield Reply(serialize(response), output)
        except HttpAbort as exc:
            raise exc.connect_error() from None

    def server_stream(request: bytes, ctx: RequestContext) -> AsyncIterator[Reply]:
        return relay(handler.unary_stream(deserialize(request), HttpCallContext(ctx)))

    def bidi_stream(stream: AsyncIterator[bytes], ctx: RequestContext) -> AsyncIterator[Reply]:
        return relay(handler.stream_stream(requests(stream), HttpCallContext(ctx)))

    match method.stream_type:
        case StreamType.UNARY:
            return Endpoint.unary(method, unary)
        case StreamType.CLIENT_STREAM:
            return Endpoint.client_stream(method, client_stream)
        case StreamType.SERVER_STREAM:
            return Endpoint.server_stream(method, server_stream)
        case _:
            return Endpoint.bidi_stream(method, bidi_stream)


@dataclass(frozen=True)
class _Details:
    """grpc.HandlerCallDetails for a lookup in Gateway.service."""

    method: str
    invocation_metadata: tuple = ()


class ConnectApp(ConnectASGIApplication):
    """Every fronted method of the gateway, by its gRPC path, over the Connect and gRPC-Web protocols."""

    def __init__(self, gateway: Gateway, read_max_bytes: int) -> None:
        endpoints = {route.path: _endpoint(gateway, route) for route in gateway.routes.values()}
        super().__init__(
            service=gateway,
            endpoints=lambda _: endpoints,
            read_max_bytes=read_max_bytes,
            codecs=[BinaryCodec(), JsonCodec()],
        )
        self.paths = frozenset(endpoints)

    @property
    def path(self) -> str:
        return "/"


class HttpFront:
    """The ASGI application of the HTTP port: API calls by their gRPC path, anything else the console's files."""

    def __init__(self, gateway: Gateway, *, read_max_bytes: int, console_dir: Path | None = CONSOLE_DIR) -> None:
        self.api = ConnectApp(gateway, read_max_bytes)
        self.console_dir = console_dir if console_dir is not None and console_dir.is_dir() else None
        self.static = StaticFiles(directory=self.console_dir, html=True) if self.console_dir else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return
        if scope["type"] != "http":
            raise RuntimeError("the gateway's HTTP port takes HTTP requests only")
        if scope["path"] in self.api.paths:
            if scope["method"] == "POST" and _is_grpc(scope):
                await _plain(
                    send,
                    415,
                    b"gRPC over HTTP/2 goes to the gateway's gRPC port; this port speaks Connect, gRPC-Web and JSON\n",
                )
                return
            await self.api(scope, receive, send)
            return
        if self.static is None:
            await _plain(send, 404, b"no console here: build it with `make console` (console/dist is missing)\n")
            return

        async def secured(message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), *SECURITY_HEADERS]}
            await send(message)

        try:
            await self.static(scope, receive, secured)
        except HTTPException as exc:  # StaticFiles outside a Starlette app raises its 404s and 405s
            await _plain(send, exc.status_code, f"{exc.detail}\n".encode())


def _is_grpc(scope) -> bool:
    for key, value in scope.get("headers", ()):
        if key == b"content-type":
            return value == b"application/grpc" or value.startswith((b"application/grpc+", b"application/grpc;"))
    return False


async def _plain(send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


def application(
    gateway: Gateway, *, read_max_bytes: int, cors_origins: list[str], console_dir: Path | None = CONSOLE_DIR
):
    """The HTTP port's ASGI application; CORS answers only when origins are configured (off by default)."""
    app = HttpFront(gateway, read_max_bytes=read_max_bytes, console_dir=console_dir)
    if not cors_origins:
        return app
    return CORSMiddleware(
        app,
        allow_origins=cors_origins,
        allow_methods=["GET", "POST"],
        allow_headers=CORS_ALLOW_HEADERS,
        expose_headers=CORS_EXPOSE_HEADERS,
        max_age=7200,
    )


class _Server(uvicorn.Server):
    """uvicorn inside the gateway's own event loop: the process's signal handling stays run_until_terminated's."""

    def capture_signals(self):
        return contextlib.nullcontext()


class HttpServer:
    """The HTTP port, started in the running event loop; stop() lets open calls finish within `grace` seconds."""

    def __init__(self, app, listen: str, grace: float) -> None:
        host, _, port = listen.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, int(port)))
        except (OSError, ValueError) as exc:
            self.sock.close()
            raise SystemExit(f"cannot listen on {listen} (TRAINYARD_HTTP_LISTEN): {exc}") from None
        self.host = host
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,
            log_config=None,
            server_header=False,
            timeout_graceful_shutdown=max(int(grace), 1),
            ws="none",
        )
        self.server = _Server(config)
        self._task: asyncio.Task | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> None:
        self._task = asyncio.create_task(self.server.serve(sockets=[self.sock]), name="gateway-http")
        while not self.server.started:
            if self._task.done():
                self._task.result()
                raise SystemExit("the gateway's HTTP port did not start")
            await asyncio.sleep(0.01)

    async def stop(self) -> None:
        if self._task is None:
            return
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
