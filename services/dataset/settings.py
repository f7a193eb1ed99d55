"""Settings of the dataset service: the shared ones plus import limits (env TRAINYARD_DATASET_*)."""

from __future__ import annotations

from pydantic import Field

from services.common.settings import Settings

GIB = 1024**3


class DatasetSettings(Settings):
    # Largest archive a client may upload, bytes (RESOURCE_EXHAUSTED above it).
    dataset_max_upload_bytes: int = Field(default=4 * GIB, ge=1)
    # Largest total uncompressed size of an archive's entries, bytes (zip bombs).
    dataset_max_uncompressed_bytes: int = Field(default=16 * GIB, ge=1)
    # Most entries an archive may hold.
    dataset_max_entries: int = Field(default=500_000, ge=1)
    # Largest image, in pixels (decompression bombs).
    dataset_max_image_pixels: int = Field(default=100_000_000, ge=1)
    # Folder for spooled uploads; the system temp folder when empty.
    dataset_spool_dir: str = ""
    # Seconds an import waits for an object store that is away (a restart, a failover: connection refused
    # or reset, timeouts, 5xx, SlowDown) before it fails UNAVAILABLE with nothing created; each call is
    # retried with backoff (0.5 s doubling to 10 s). Refusals (NoSuchBucket, AccessDenied) fail at once.
    dataset_object_store_retry_s: float = Field(default=60.0, ge=0)


def dataset_settings(settings: Settings) -> DatasetSettings:
    """The dataset settings for a plain Settings (values, and any extra keys set via model_copy, win)."""
    if isinstance(settings, DatasetSettings):
        return settings
    return DatasetSettings().model_copy(update=dict(settings.__dict__))
