"""Client channels from one service to another, carrying the caller's identity and deadline."""

from __future__ import annotations

import contextvars
import time

import grpc

from kernel import identity
from kernel.settings import Settings

# When the RPC being served must end (time.monotonic()), if its caller set a deadline: calls made on its
# behalf get no more time than is left, so a caller that gave up does not keep work running downstream.
_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("trainyard_deadline", default=None)


def set_deadline(time_remaining: float | None) -> None:
    """Called as an RPC starts with its context.time_remaining() (None: the caller set no deadline)."""
    _deadline.set(None if time_remaining is None else time.monotonic() + time_remaining)


def call_timeout(default: float) -> float:
    """The timeout for a call made on behalf of the current caller: default, or less when the caller's
    deadline comes sooner (a small positive floor, so the call fails as DEADLINE_EXCEEDED)."""
    deadline = _deadline.get()
    if deadline is None:
        return default
    return max(0.001, min(default, deadline - time.monotonic()))


def internal_channel(address: str, settings: Settings) -> grpc.aio.Channel:
    if not address:
        raise SystemExit("an internal service address is not configured (TRAINYARD_*_ADDRESS)")
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    if settings.service_tls_client_ca_file is None:
        return grpc.aio.insecure_channel(address, options=options)
    # One internal CA signs every service: it verifies the peer, and this service's own
    # certificate is its client certificate.
    cert, key = settings.service_tls_cert_file, settings.service_tls_key_file
    credentials = grpc.ssl_channel_credentials(
        root_certificates=settings.service_tls_client_ca_file.read_bytes(),
        private_key=key.read_bytes() if key else None,
        certificate_chain=cert.read_bytes() if cert else None,
    )
    return grpc.aio.secure_channel(address, credentials, options=options)


def call_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Metadata for a call made on behalf of the current caller."""
    return identity.outgoing_metadata(identity.current(), settings.internal_token)
