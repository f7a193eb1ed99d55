"""Start the gateway in-process: key store (migrated), backend channels, proxy, AuthService,
health and reflection for every fronted service, optional TLS."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway import http
from gateway.auth import Authenticator
from gateway.keys import KeyStore
from gateway.limits import FailureLimiter, RateLimiter, StreamLimiter
from gateway.proxy import Gateway
from gateway.routes import BACKEND_SERVICES, FRONTED_SERVICES
from gateway.servicer import AuthServicer
from gateway.settings import GatewaySettings, gateway_settings
from gateway.tenancy import Tenancy
from kernel.db import make_engine, migrate
from kernel.server import RunningService, server_options
from kernel.settings import Settings

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version_gateway"


def backend_addresses(settings: Settings) -> dict[str, str]:
    return {name: getattr(settings, f"{name}_address") for name in BACKEND_SERVICES}


def _credentials(settings: GatewaySettings) -> grpc.ServerCredentials | None:
    if settings.tls_cert_file is None or settings.tls_key_file is None:
        return None
    try:
        cert = settings.tls_cert_file.read_bytes()
        key = settings.tls_key_file.read_bytes()
    except OSError as exc:
        raise SystemExit(f"cannot read TLS files (TRAINYARD_TLS_CERT_FILE/TRAINYARD_TLS_KEY_FILE): {exc}") from None
    return grpc.ssl_server_credentials([(key, cert)])


def _read(path: Path, variable: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SystemExit(f"cannot read {variable} ({path}): {exc}") from None


def backend_channel(settings: GatewaySettings, address: str, options: list) -> grpc.aio.Channel:
    """A channel to one service: plaintext, or (mutual) TLS when backend_tls_ca_file is set."""
    if settings.backend_tls_ca_file is None:
        return grpc.aio.insecure_channel(address, options=options)
    ca = _read(settings.backend_tls_ca_file, "TRAINYARD_BACKEND_TLS_CA_FILE")
    key = cert = None
    if settings.backend_tls_cert_file is not None and settings.backend_tls_key_file is not None:
        cert = _read(settings.backend_tls_cert_file, "TRAINYARD_BACKEND_TLS_CERT_FILE")
        key = _read(settings.backend_tls_key_file, "TRAINYARD_BACKEND_TLS_KEY_FILE")
    credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
    if settings.backend_tls_server_name:
        options = [*options, ("grpc.ssl_target_name_override", settings.backend_tls_server_name)]
    return grpc.aio.secure_channel(address, credentials, options=options)


async def start(settings: Settings) -> RunningService:
    settings = gateway_settings(settings)
    engine = make_engine(settings.database_url)
    await asyncio.to_thread(migrate, engine, MIGRATIONS, VERSION_TABLE)
    store = KeyStore(engine)
    tenancy = Tenancy(engine, store)
    await asyncio.to_thread(tenancy.ensure_project, settings.admin_project)
    if settings.bootstrap_token:
        key = await asyncio.to_thread(store.upsert_bootstrap, settings.bootstrap_token, settings.bootstrap_project)
        await asyncio.to_thread(tenancy.ensure_project, key.project)
        log.info("bootstrap key ready", extra={"key_id": key.id, "project": key.project})

    addresses = backend_addresses(settings)
    channel_options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    channels = {name: backend_channel(settings, addr, channel_options) for name, addr in addresses.items() if addr}
    for name in addresses.keys() - channels.keys():
        log.warning("backend not configured; its calls answer UNAVAILABLE", extra={"backend": name})

    authenticator = Authenticator(
        store,
        ttl=settings.key_cache_seconds,
        signing_key=settings.signing_key(),
        failures=FailureLimiter(settings.auth_failures_per_minute / 60, settings.auth_failure_burst),
        refusal_delay=settings.auth_refusal_delay_seconds,
    )
    gateway = Gateway(
        channels=channels,
        addresses=addresses,
        authenticator=authenticator,
        auth_servicer=AuthServicer(store, authenticator, tenancy, admin_project=settings.admin_project),
        internal_token=settings.internal_token,
        default_deadline=settings.default_deadline_seconds,
        rate_limiter=RateLimiter(settings.rate_limit_per_second, settings.rate_limit_burst),
        stream_limiter=StreamLimiter(settings.max_streams_per_key),
        max_upload_bytes=settings.max_upload_bytes,
        audit=tenancy,
    )

    server = grpc.aio.server(options=server_options(settings))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection([*FRONTED_SERVICES, health.SERVICE_NAME, reflection.SERVICE_NAME], server)
    server.add_generic_rpc_handlers((gateway,))

    credentials = _credentials(settings)
    if credentials is None:
        port = server.add_insecure_port(settings.listen)
    else:
        port = server.add_secure_port(settings.listen, credentials)
    if port == 0:
        raise SystemExit(f"cannot listen on {settings.listen} (TRAINYARD_LISTEN)")
    await server.start()
    for name in [*FRONTED_SERVICES, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    server.health_servicer = health_servicer  # type: ignore[attr-defined]  # run_until_terminated drains it
    log.info(
        "gateway listening",
        extra={
            "address": f"{settings.listen.rpartition(':')[0]}:{port}",
            "tls": credentials is not None,
            "backends": {k: v for k, v in addresses.items() if v},
        },
    )

    async def close_channels() -> None:
        await asyncio.gather(*(channel.close() for channel in channels.values()))

    closers = [engine.dispose, close_channels]
    http_server = None
    if settings.http_listen:
        app = http.application(
            gateway,
            read_max_bytes=settings.max_message_bytes,
            cors_origins=settings.cors_origins(),
            console_dir=settings.console_dir or http.CONSOLE_DIR,
        )
        http_server = http.HttpServer(app, settings.http_listen, settings.shutdown_grace)
        await http_server.start()
        closers.append(http_server.stop)  # closed first: its calls go through the channels
        log.info("gateway HTTP port listening", extra={"url": http_server.url, "cors": settings.cors_origins()})

    running = RunningService(server, port, closers=closers)
    running.authenticator = authenticator  # type: ignore[attr-defined]
    running.http = http_server  # type: ignore[attr-defined]
    running.gateway = gateway  # type: ignore[attr-defined]
    return running
