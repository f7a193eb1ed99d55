"""Gateway settings: the shared Settings plus what only the front door needs (env prefix TRAINYARD_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from gateway.tokens import parse_token
from kernel.settings import Settings


class GatewaySettings(Settings):
    # The front door listens on a well-known port unless told otherwise.
    listen: str = "127.0.0.1:50051"
    # A token `ty_<key_id>_<secret>` upserted at start as an admin key of bootstrap_project.
    bootstrap_token: str = ""
    bootstrap_project: str = "default"
    # The HTTP port (Connect, gRPC-Web, JSON over HTTP, and the console's files), "host:port"; empty: none.
    http_listen: str = ""
    # Origins whose pages may call the HTTP port from a browser (CORS), comma-separated, or "*" for any;
    # empty (the default): no CORS answers, so only the console served by the port itself calls it.
    http_cors_origins: str = ""
    # The console's built files served at the HTTP port's root (default: console/dist of this checkout).
    console_dir: Path | None = None
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
    # Failed authentications allowed per peer address and per key id (per minute sustained, and at once);
    # past them calls are refused RESOURCE_EXHAUSTED before any verification. Tokens verified within the
    # last hour are never held back. 0 turns the limit off.
    auth_failures_per_minute: float = Field(default=60.0, ge=0)
    auth_failure_burst: int = Field(default=20, ge=1)
    # Seconds such a refusal is held before it is answered (at most its retry delay): a flooding client that
    # waits for its answers slows down to about a call a second each; holding a call costs a timer.
    auth_refusal_delay_seconds: float = Field(default=1.0, ge=0, le=30)
    # Streaming calls (uploads, watches) a key may hold open at once (0 turns the limit off).
    max_streams_per_key: int = Field(default=16, ge=0)
    # Largest upload (sum of a client stream's messages), bytes; 0 turns the limit off.
    max_upload_bytes: int = Field(default=4 * 1024**3, ge=0)
    # Project whose admins may create projects and see them all.
    admin_project: str = "default"
    # HMAC key for short-lived tokens (CreateToken); replicas must share it. Empty: derived from
    # the internal token, or random per process when that is empty too.
    token_signing_key: str = ""
    # Mutual TLS to the services (PEM files): the CA that signed the services' certificates, and
    # the gateway's client certificate and key. Unset: plaintext on the internal network.
    backend_tls_ca_file: Path | None = None
    backend_tls_cert_file: Path | None = None
    backend_tls_key_file: Path | None = None
    # Name the services' certificates are checked against (default: the host in each address).
    backend_tls_server_name: str = ""

    @field_validator("bootstrap_token")
    @classmethod
    def _token(cls, value: str) -> str:
        if value and parse_token(value) is None:
            raise ValueError("expected ty_<key_id>_<secret> (key id: letters, digits, '-'; secret: 16+ characters)")
        return value

    @field_validator("http_listen")
    @classmethod
    def _http_listen(cls, value: str) -> str:
        if value and not value.rpartition(":")[2].isdigit():
            raise ValueError("expected host:port (port 0: any free port)")
        return value

    def cors_origins(self) -> list[str]:
        return [origin.strip() for origin in self.http_cors_origins.split(",") if origin.strip()]

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
        if (self.backend_tls_cert_file is None) != (self.backend_tls_key_file is None):
            raise ValueError("TRAINYARD_BACKEND_TLS_CERT_FILE and TRAINYARD_BACKEND_TLS_KEY_FILE must be set together")
        if self.backend_tls_cert_file is not None and self.backend_tls_ca_file is None:
            raise ValueError("TRAINYARD_BACKEND_TLS_CA_FILE is needed with a backend client certificate")
        return self

    def signing_key(self) -> bytes:
        import hashlib
        import secrets

        if self.token_signing_key:
            return self.token_signing_key.encode()
        if self.internal_token:
            return hashlib.sha256(b"trainyard-token-signing:" + self.internal_token.encode()).digest()
        return secrets.token_bytes(32)


def gateway_settings(settings: Settings) -> GatewaySettings:
    """The gateway's settings from plain Settings (tests pass the shared fixture)."""
    if isinstance(settings, GatewaySettings):
        return settings
    # __dict__ also holds keys set with model_copy(update={...}) on a plain Settings (bootstrap_token ...).
    return GatewaySettings.model_validate(dict(settings.__dict__))
