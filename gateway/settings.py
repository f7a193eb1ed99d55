"""Gateway settings: the shared Settings plus what only the front door needs (env prefix TRAINYARD_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from gateway.tokens import parse_token
from services.common.settings import Settings


class GatewaySettings(Settings):
    # The front door listens on a well-known port unless told otherwise.
    listen: str = "127.0.0.1:50051"
    # A token `ty_<key_id>_<secret>` upserted at start as an admin key of bootstrap_project.
    bootstrap_token: str = ""
    bootstrap_project: str = "default"
    # Serve TLS when both are set (PEM files).
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    # Seconds a verified key stays cached; revocation elsewhere takes effect within this.
    key_cache_seconds: float = Field(default=5.0, ge=0, le=300)
    # Deadline given to a unary backend call when the client sent none; streams get none.
    default_deadline_seconds: float = Field(default=60.0, gt=0, le=86400)
    # Calls per second per API key (token bucket; 0 turns the limit off) and the burst allowed.
    rate_limit_per_second: float = Field(default=200.0, ge=0)
    rate_limit_burst: int = Field(default=400, ge=1)

    @field_validator("bootstrap_token")
    @classmethod
    def _token(cls, value: str) -> str:
        if value and parse_token(value) is None:
            raise ValueError("expected ty_<key_id>_<secret> (key id: letters, digits, '-'; secret: 16+ characters)")
        return value

    @field_validator("bootstrap_project")
    @classmethod
    def _project(cls, value: str) -> str:
        if not value or len(value) > 128:
            raise ValueError("expected 1..128 characters")
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> GatewaySettings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TRAINYARD_TLS_CERT_FILE and TRAINYARD_TLS_KEY_FILE must be set together")
        return self


def gateway_settings(settings: Settings) -> GatewaySettings:
    """The gateway's settings from plain Settings (tests pass the shared fixture)."""
    if isinstance(settings, GatewaySettings):
        return settings
    # __dict__ also holds keys set with model_copy(update={...}) on a plain Settings (bootstrap_token ...).
    return GatewaySettings.model_validate(dict(settings.__dict__))
