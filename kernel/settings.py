"""Configuration from the environment (pydantic-settings).

Every process reads the same variables, prefixed TRAINYARD_ (DATABASE_URL also works bare).
A bad value stops the process with a message naming the variable and the reason.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TypeVar

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TRAINYARD_", extra="ignore")

    # Where this process listens (host:port); port 0 picks a free one.
    listen: str = "127.0.0.1:0"
    database_url: str = Field(
        default="sqlite:///trainyard.db",
        validation_alias=AliasChoices("DATABASE_URL", "TRAINYARD_DATABASE_URL"),
    )
    s3_endpoint: str = "127.0.0.1:8333"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    nats_url: str = "nats://127.0.0.1:4222"
    # Copies of each JetStream stream (3 on a 3-node NATS cluster); see messaging.ensure_streams.
    nats_replicas: int = Field(default=1, ge=1, le=5)
    # Training service reconcile (services/training/reconcile.py): a RUNNING task whose trainer sent no event
    # (heartbeats included) for training_lease_s is requeued or failed; a PENDING task (stored, never queued)
    # older than training_pending_grace_s is queued again. A sweep runs at start and every interval.
    training_lease_s: float = Field(default=300.0, gt=0)
    training_sweep_interval_s: float = Field(default=30.0, gt=0)
    training_pending_grace_s: float = Field(default=30.0, ge=0)
    # A WatchTrainingTask whose service has been out of reach of NATS this long ends UNAVAILABLE, naming
    # the event cursor (after_sequence) to resume from: no event can reach it meanwhile.
    training_watch_bus_grace_s: float = Field(default=3.0, gt=0)
    # Per-project quotas of the training service (0: none): tasks that have not ended (a search counts once),
    # and bytes its tasks keep in the object store (checkpoints, models, exports). CreateTrainingTask past
    # either is RESOURCE_EXHAUSTED (QUOTA_EXCEEDED); DeleteTrainingTask makes room.
    training_max_active_tasks_per_project: int = Field(default=0, ge=0)
    training_storage_quota_bytes_per_project: int = Field(default=0, ge=0)
    # Shared secret the gateway sends to internal services; empty disables the check (tests).
    internal_token: str = ""
    # Internal service addresses, host:port.
    dataset_address: str = ""
    modelzoo_address: str = ""
    recommend_address: str = ""
    training_address: str = ""
    inference_address: str = ""
    # The object store's address as clients reach it (host:port), used in the download links handed to
    # them; empty: links are not handed out and clients download through the gateway (ReadTaskArtifact).
    s3_public_endpoint: str = ""
    s3_public_secure: bool = False
    log_level: str = "INFO"
    log_format: str = "json"
    # Seconds given to in-flight RPCs on SIGTERM.
    shutdown_grace: float = Field(default=10.0, ge=0, le=600)
    # Largest gRPC message, bytes.
    max_message_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # Folder for local state (caches, catalog).
    home: Path = Path(".trainyard")
    # Serve TLS on the internal port when both are set (PEM); with a client CA, require client certificates
    # (mutual TLS from the gateway).
    service_tls_cert_file: Path | None = None
    service_tls_key_file: Path | None = None
    service_tls_client_ca_file: Path | None = None

    @field_validator(
        "listen", "dataset_address", "modelzoo_address", "recommend_address", "training_address", "inference_address"
    )
    @classmethod
    def _host_port(cls, value: str) -> str:
        if value == "":
            return value
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, got {value!r}")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        if value.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("expected one of DEBUG, INFO, WARNING, ERROR")
        return value.upper()

    @field_validator("log_format")
    @classmethod
    def _format(cls, value: str) -> str:
        if value not in {"json", "console"}:
            raise ValueError("expected json or console")
        return value

    @field_validator("database_url")
    @classmethod
    def _db(cls, value: str) -> str:
        if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgres:")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value


S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S] = Settings) -> S:  # type: ignore[assignment]
    """Build settings or exit with a message that names each bad variable."""
    try:
        return cls()
    except ValidationError as exc:
        prefix = cls.model_config.get("env_prefix", "")
        lines = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            lines.append(f"  {prefix}{field.upper()}: {err['msg']} (got {err.get('input')!r})")
        print("invalid configuration:\n" + "\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None
