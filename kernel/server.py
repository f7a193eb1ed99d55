"""Build, start and drain a grpc.aio server the same way for every service.

    server, port = await serve(settings, [(add_XServicer_to_server, servicer, "pkg.XService")])
    await run_until_terminated(server, settings.shutdown_grace)

Every server gets health checking (SERVING per service), reflection, the error interceptor
(domain errors -> canonical codes with details; anything else -> INTERNAL, logged) and the
identity interceptor (internal token check, caller's project into a contextvar).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import signal
from collections.abc import Callable, Iterable
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from kernel import channels, fields, identity
from kernel.errors import TrainyardError, Unauthenticated, translate
from kernel.settings import Settings

log = logging.getLogger(__name__)

Registration = tuple[Callable[[Any, grpc.aio.Server], None], Any, str]


def _wrap(handler: grpc.RpcMethodHandler, method: str, internal_token: str) -> grpc.RpcMethodHandler:
    """Wrap a handler's behaviour with identity extraction and error mapping."""

    def enter(context: grpc.aio.ServicerContext) -> contextvars_token:
        md = {k: v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
        who = identity.from_metadata(md, internal_token)
        if who is None:
            raise Unauthenticated("missing or wrong internal credential: call through the gateway")
        channels.set_deadline(context.time_remaining())
        return identity.set_current(who)

    async def fail(context: grpc.aio.ServicerContext, exc: BaseException) -> None:
        mapped = translate(exc)
        if mapped is not None:
            if not isinstance(exc, TrainyardError):
                log.warning("%s failed: %s", method, mapped.message)
            await context.abort_with_status(mapped.to_status())
        log.exception("unhandled error in %s", method)
        await context.abort(grpc.StatusCode.INTERNAL, f"internal error in {method}; see the service log")

    def checked(request, streaming: bool):
        """Every request message's text fields within their limits (fields.check_lengths) before the handler
        sees it: an error never echoes an oversized value."""
        if not streaming:
            fields.check_lengths(request)
            return request
        return _CheckedStream(request)

    def unary_response(behavior, streaming: bool):
        async def call(request, context):
            stream = None
            try:
                enter(context)
                stream = checked(request, streaming)
                return await behavior(stream, context)
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                if isinstance(stream, _CheckedStream):
                    await stream.drain()
                await fail(context, exc)

        return call

    def stream_response(behavior, streaming: bool):
        async def call(request, context):
            stream = None
            try:
                enter(context)
                stream = checked(request, streaming)
                async for item in behavior(stream, context):
                    yield item
            except (grpc.aio.AbortError, asyncio.CancelledError):
                raise
            except Exception as exc:  # noqa: BLE001 - mapped to a status
                if isinstance(stream, _CheckedStream):
                    await stream.drain()
                await fail(context, exc)

        return call

    kw = {"request_deserializer": handler.request_deserializer, "response_serializer": handler.response_serializer}
    if handler.unary_unary:
        return grpc.unary_unary_rpc_method_handler(unary_response(handler.unary_unary, False), **kw)
    if handler.stream_unary:
        return grpc.stream_unary_rpc_method_handler(unary_response(handler.stream_unary, True), **kw)
    if handler.unary_stream:
        return grpc.unary_stream_rpc_method_handler(stream_response(handler.unary_stream, False), **kw)
    return grpc.stream_stream_rpc_method_handler(stream_response(handler.stream_stream, True), **kw)


contextvars_token = Any


# A handler that fails before its client stream ends (an upload refused on its first message) reads the rest
# of the stream, up to these bounds, before it answers: a status sent before the client half-closes races
# the client's next write, and grpc.aio clients (the gateway's calls to the services too) then report
# INTERNAL "Internal error from Core" instead of it (grpc/grpc#36066).
DRAIN_MAX_BYTES = 256 * 1024**2
DRAIN_MAX_S = 30.0


class _CheckedStream:
    """A client stream whose every message passes fields.check_lengths as it is read."""

    def __init__(self, messages) -> None:
        self._messages = messages.__aiter__()

    def __aiter__(self) -> _CheckedStream:
        return self

    async def __anext__(self):
        message = await self._messages.__anext__()
        fields.check_lengths(message)
        return message

    async def drain(self) -> None:
        """Read and drop what the client still sends (bounded by DRAIN_MAX_BYTES and DRAIN_MAX_S)."""
        received = 0
        deadline = asyncio.get_running_loop().time() + DRAIN_MAX_S
        try:
            while received <= DRAIN_MAX_BYTES:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    return
                message = await asyncio.wait_for(self._messages.__anext__(), left)
                received += message.ByteSize() if hasattr(message, "ByteSize") else len(message)
        except (StopAsyncIteration, TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
            return
        except Exception:  # noqa: BLE001 - a broken stream has nothing more to drain
            return


class ServiceInterceptor(grpc.aio.ServerInterceptor):
    """Applies identity and error handling to every RPC except health and reflection."""

    def __init__(self, internal_token: str) -> None:
        self.internal_token = internal_token

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        method = handler_call_details.method
        if handler is None or method.startswith(("/grpc.health.", "/grpc.reflection.")):
            return handler
        return _wrap(handler, method, self.internal_token)


def server_options(settings: Settings) -> list[tuple[str, Any]]:
    return [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]


def _add_port(server: grpc.aio.Server, settings: Settings) -> int:
    cert, key, client_ca = (
        settings.service_tls_cert_file,
        settings.service_tls_key_file,
        settings.service_tls_client_ca_file,
    )
    if (cert is None) != (key is None):
        raise SystemExit("TRAINYARD_SERVICE_TLS_CERT_FILE and TRAINYARD_SERVICE_TLS_KEY_FILE must be set together")
    if cert is None:
        return server.add_insecure_port(settings.listen)
    credentials = grpc.ssl_server_credentials(
        [(key.read_bytes(), cert.read_bytes())],
        root_certificates=client_ca.read_bytes() if client_ca else None,
        require_client_auth=client_ca is not None,
    )
    return server.add_secure_port(settings.listen, credentials)


async def serve(
    settings: Settings,
    registrations: Iterable[Registration],
    *,
    extra_interceptors: Iterable[grpc.aio.ServerInterceptor] = (),
    internal: bool = True,
) -> tuple[grpc.aio.Server, int]:
    """Start a server on settings.listen; returns it with the bound port."""
    interceptors = [*extra_interceptors]
    if internal:
        interceptors.append(ServiceInterceptor(settings.internal_token))
    server = grpc.aio.server(interceptors=interceptors, options=server_options(settings))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    names = []
    for add, servicer, name in registrations:
        add(servicer, server)
        names.append(name)
    reflection.enable_server_reflection([*names, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    port = _add_port(server, settings)
    if port == 0:
        raise SystemExit(f"cannot listen on {settings.listen}")
    await server.start()
    for name in [*names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.health_servicer = health_servicer  # type: ignore[attr-defined]
    log.info("listening", extra={"address": f"{settings.listen.rpartition(':')[0]}:{port}", "services": names})
    return server, port


async def run_until_terminated(server: grpc.aio.Server, grace: float, on_stop: Callable[[], Any] | None = None) -> None:
    """Serve until SIGTERM/SIGINT, then stop taking calls and let in-flight ones finish."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("draining", extra={"grace_s": grace})
    health_servicer = getattr(server, "health_servicer", None)
    if health_servicer is not None:
        await health_servicer.enter_graceful_shutdown()
    if on_stop is not None:
        result = on_stop()
        if inspect.isawaitable(result):
            await result
    await server.stop(grace)
    log.info("stopped")


class RunningService:
    """A started server plus what must be closed after it (NATS, threads); tests stop it in-process."""

    def __init__(self, server: grpc.aio.Server, port: int, closers: Iterable[Callable[[], Any]] = ()) -> None:
        self.server = server
        self.port = port
        self.closers = list(closers)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    async def close_resources(self) -> None:
        for close in reversed(self.closers):
            result = close()
            if inspect.isawaitable(result):
                await result

    async def stop(self, grace: float = 0) -> None:
        await self.server.stop(grace)
        await self.close_resources()


def run_main(service: str, start: Callable[[Settings], Any], settings_cls: type[Settings] = Settings) -> None:
    """Entry point of `python -m services.<name>`: settings, logging, serve until SIGTERM."""
    from kernel.logs import setup_logging
    from kernel.settings import load_settings

    settings = load_settings(settings_cls)
    setup_logging(service, settings.log_level, settings.log_format)

    async def main() -> None:
        running: RunningService = await start(settings)
        await run_until_terminated(running.server, settings.shutdown_grace)
        await running.close_resources()

    asyncio.run(main())
