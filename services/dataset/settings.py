"""Settings of the dataset service: the shared ones plus import limits (env TRAINYARD_DATASET_*)."""

from __future__ import annotations

from pydantic import Field

from kernel.settings import Settings

GIB = 1024**3


class DatasetSettings(Settings):
    # Largest archive a client may upload, bytes (RESOURCE_EXHAUSTED above it).
    dataset_max_upload_bytes: int = Field(default=4 * GIB, ge=1)
    # Zip bombs: every bound below is checked on the sizes an archive declares, before anything is expanded
    # (refused at once, naming the entry), and again while entries are read (in chunks; large ones go to disk).
    # Largest total uncompressed size of an archive's entries, bytes.
    dataset_max_uncompressed_bytes: int = Field(default=16 * GIB, ge=1)
    # Largest uncompressed size of one entry, bytes (COCO's largest annotation file is 0.45 GiB).
    dataset_max_entry_bytes: int = Field(default=GIB, ge=1)
    # Largest compression ratio (uncompressed : compressed) of an entry, and of the archive as a whole, judged
    # from 64 MiB of uncompressed data up (importer.RATIO_APPLIES_FROM). Images and annotations compress far
    # less than 100:1; a 2 MiB zip of one 2 GiB entry is 1000:1.
    dataset_max_compression_ratio: float = Field(default=100.0, ge=1)
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
    # A running import touches its row this often; WatchImport ends UNAVAILABLE (reason IMPORT_STALLED) when
    # an import has not been heard of for dataset_import_stall_s (the replica running it stopped: a restart
    # fails it), instead of streaming nothing forever.
    dataset_import_heartbeat_s: float = Field(default=2.0, gt=0)
    dataset_import_stall_s: float = Field(default=15.0, gt=0)


def dataset_settings(settings: Settings) -> DatasetSettings:
    """The dataset settings for a plain Settings (values, and any extra keys set via model_copy, win)."""
    if isinstance(settings, DatasetSettings):
        return settings
    return DatasetSettings().model_copy(update=dict(settings.__dict__))
