"""The model zoo's domain logic: browse the catalog and the project's trained models, import weights,
register trained models, list presets.

Plain and synchronous; raises kernel.errors. The catalog is read-only and in memory (with
per-task indexes); imported weights are rows in modelzoo_weights plus objects in WEIGHTS_BUCKET at
``weights/<sha256>.pth`` (the file's bytes, as the library ships them). Their state is cached for
STATE_TTL_S seconds (and refreshed at once after an import here), so ListModels touches SQL at most
that often. Trained models (modelzoo_trained_models) belong to one project each.

A combo model ("combo/<head>+<backbone>.<tag>") has no pre-trained weights of its own: its
weight_status is that of its backbone's ImageNet weights (the catalog model `backbone_model_id`),
which a training job carries as ModelSpec.backbone_weights; importing a combo imports its backbone.

Weights have a scope. The public ones (WeightsRow.project == "") are what every project fine-tunes
from: they come from the configured source chain (services.modelzoo.sources: offline files, the
publishers, a mirror, an S3 prefix), fetched by a pull (services.modelzoo.pulls) that any number of
callers may watch, or from an upload by a platform operator. Anyone else's upload is their project's
own: that project sees and trains from it instead of the public file, and no other project is affected.

Weights are checked before they are stored: the file must load into the architecture with a strict
key (and shape) match, checked in a subprocess (services.modelzoo.weights_check; this process never
imports torch). Mismatches are INVALID_ARGUMENT with field violations weights.missing_keys,
weights.unexpected_keys and weights.mismatched_shapes.

ModelZoo is composed of its sections, each a module beside this one: reads (models, families, presets),
weights (import, pull, export, upload), trained (the project's trained models); views holds what they share.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from minio import Minio
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from services.modelzoo import presets as presets_mod
from services.modelzoo import pulls as pulls_mod
from services.modelzoo.catalog import Catalog, CatalogModel
from services.modelzoo.models import WeightsRow
from services.modelzoo.reads import Reads
from services.modelzoo.sources import OfflineSources, SourceChain
from services.modelzoo.trained import TrainedModels
from services.modelzoo.views import (
    IMPORTABLE,
    IN_STORE,
    PUBLIC,
    SCOPE_PROJECT,
    SCOPE_PUBLIC,
    STATE_TTL_S,
    TASK_TYPE_NAMES,
    TASK_TYPE_NUMBERS,
    UNAVAILABLE,
    FamilyView,
    ModelQuery,
    ModelView,
    PresetView,
    Selected,
    StoredWeights,
    TrainedModelInput,
    WeightsSelection,
    _stored,
)
from services.modelzoo.weights import Weights

__all__ = [
    "FamilyView",
    "IMPORTABLE",
    "IN_STORE",
    "ModelQuery",
    "ModelView",
    "ModelZoo",
    "OfflineSources",
    "PUBLIC",
    "PresetView",
    "SCOPE_PROJECT",
    "SCOPE_PUBLIC",
    "Selected",
    "StoredWeights",
    "TASK_TYPE_NAMES",
    "TASK_TYPE_NUMBERS",
    "TrainedModelInput",
    "UNAVAILABLE",
    "WeightsSelection",
]

log = logging.getLogger(__name__)


class ModelZoo(Reads, Weights, TrainedModels):
    def __init__(
        self,
        catalog: Catalog,
        engine: Engine,
        s3: Minio,
        sources: SourceChain | OfflineSources,
        work_dir: Path | None = None,
        *,
        max_concurrent_pulls: int = 2,
    ) -> None:
        self.catalog = catalog
        self.engine = engine
        self.s3 = s3
        self.sources = SourceChain([sources]) if isinstance(sources, OfflineSources) else sources
        self.work_dir = Path(work_dir) if work_dir else None
        self.puller = pulls_mod.Puller(self._fetch_public, max_concurrent_pulls)
        self.presets = [p for p in presets_mod.PRESETS if self._preset_ok(p)]
        self.presets_by_id = {p.id: p for p in self.presets}
        # in-memory indexes: models per task type (sorted by id), per family
        self._by_task: dict[str | None, list[CatalogModel]] = {None: list(catalog.models)}
        for task in TASK_TYPE_NAMES.values():
            self._by_task[task] = [m for m in catalog.models if task in m.task_types]
        self._lock = threading.Lock()
        self._stored_cache: tuple[float, dict[str, StoredWeights]] | None = None

    def _preset_ok(self, preset: presets_mod.Preset) -> bool:
        if self.catalog.get(preset.model_id) is None:
            log.warning("preset left out: its model is not in the catalog", extra={"preset": preset.id})
            return False
        return True

    def _stored(self, fresh: bool = False) -> dict[tuple[str, str], StoredWeights]:
        """Every stored weight file by (scope project, model id)."""
        now = time.monotonic()
        with self._lock:
            cached = self._stored_cache
        if not fresh and cached is not None and now - cached[0] < STATE_TTL_S:
            return cached[1]
        with Session(self.engine) as session:
            rows = session.exec(select(WeightsRow)).all()
        stored = {(r.project, r.model_id): _stored(r) for r in rows}
        with self._lock:
            self._stored_cache = (now, stored)
        return stored

    def _invalidate(self) -> None:
        with self._lock:
            self._stored_cache = None

    def _status(self, model: CatalogModel, stored: dict, project: str) -> tuple[str, StoredWeights | None]:
        """The project's own upload wins over the public weights; other projects' uploads never show.
        Not in the store: IMPORTABLE when a configured source provides them."""
        for scope in (project, PUBLIC):
            if (scope, model.id) in stored:
                return IN_STORE, stored[(scope, model.id)]
        if self.sources.provides(model):
            return IMPORTABLE, None
        return UNAVAILABLE, None

    def _view(self, model: CatalogModel, stored: dict, project: str) -> ModelView:
        if model.backbone_model_id:
            backbone = self.catalog.get(model.backbone_model_id)
            if backbone is None:  # a catalog built without its backbone entry
                return ModelView(model, UNAVAILABLE, backbone_status=UNAVAILABLE)
            status, weights = self._status(backbone, stored, project)
            return ModelView(model, status, None, backbone_status=status, backbone_weights=weights)
        status, weights = self._status(model, stored, project)
        return ModelView(model, status, weights)
