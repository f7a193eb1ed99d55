"""Client channels from one service to another, carrying the caller's identity."""

from __future__ import annotations

import grpc

from services.common import identity
from services.common.settings import Settings


def internal_channel(address: str, settings: Settings) -> grpc.aio.Channel:
    if not address:
        raise SystemExit("an internal service address is not configured (TRAINYARD_*_ADDRESS)")
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", settings.max_message_bytes),
            ("grpc.max_send_message_length", settings.max_message_bytes),
        ],
    )


def call_metadata(settings: Settings) -> tuple[tuple[str, str], ...]:
    """Metadata for a call made on behalf of the current caller."""
    return identity.outgoing_metadata(identity.current(), settings.internal_token)
