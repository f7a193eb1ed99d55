"""ModelZoo's reads: models, families and presets (services/modelzoo/domain.py composes the sections)."""

from __future__ import annotations

import math

from sqlmodel import Session

from kernel.errors import (
    InvalidArgument,
    NotFound,
)
from services.modelzoo import presets as presets_mod
from services.modelzoo.catalog import CatalogFamily, CatalogModel
from services.modelzoo.models import TrainedModelRow
from services.modelzoo.views import (
    IN_STORE,
    TRAINED_PREFIX,
    FamilyView,
    ModelQuery,
    ModelView,
    PresetView,
    _fingerprint,
    _page_size,
    _task_type,
    decode_page_token,
    encode_page_token,
)
from trainyard.common.v1 import common_pb2


class Reads:
    """Browsing the zoo: models, families and presets, with their weights' state (a part of ModelZoo)."""

    def get_model(self, model_id: str, project: str = "default") -> ModelView:
        if model_id.startswith(TRAINED_PREFIX):
            with Session(self.engine) as session:
                row = session.get(TrainedModelRow, (project, model_id[len(TRAINED_PREFIX) :]))
            if row is None:
                raise NotFound(f"trained model {model_id!r} does not exist", metadata={"model_id": model_id})
            return self._trained_view(row)
        model = self.catalog.get(model_id)
        if model is None:
            raise NotFound(f"model {model_id!r} is not in the zoo catalog", metadata={"model_id": model_id})
        # one model: read the state fresh (lists use the cache)
        self.sources.refresh()
        return self._view(model, self._stored(fresh=True), project)

    def list_models(
        self, query: ModelQuery, page_size: int = 0, page_token: str = "", project: str = "default"
    ) -> tuple[list[ModelView], str, int]:
        violations: dict[str, str] = {}
        task = _task_type(query.task_type, violations)
        size = _page_size(page_size, violations)
        if query.max_params < 0:
            violations["max_params"] = f"must be 0 (no limit) or positive, got {query.max_params}"
        if math.isnan(query.max_gflops) or query.max_gflops < 0:
            violations["max_gflops"] = f"must be 0 (no limit) or positive, got {query.max_gflops}"
        if query.origin not in ("", "catalog", "trained"):
            violations["origin"] = f"must be empty, 'catalog' or 'trained', got {query.origin!r}"
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("models", query)
        offset = decode_page_token(page_token, fingerprint)

        stored = self._stored()
        needle = query.query.strip().lower()

        def keep(model: CatalogModel) -> bool:
            if query.family and model.family != query.family:
                return False
            if query.pretrain_dataset and model.pretrain_dataset != query.pretrain_dataset:
                return False
            if query.max_params and model.num_params > query.max_params:
                return False
            if query.max_gflops and model.gflops > query.max_gflops:
                return False
            return not needle or any(needle in s.lower() for s in (model.id, model.family, model.architecture))

        matches: list[ModelView] = []
        if query.origin != "trained":
            for model in self._by_task[task]:  # sorted by id: a stable order for paging
                if not keep(model):
                    continue
                view = self._view(model, stored, project)
                if query.weights_in_store and view.weight_status != IN_STORE:
                    continue
                matches.append(view)
        if query.origin != "catalog":
            trained = [self._trained_view(r) for r in self._trained_rows(project)]
            trained = [v for v in trained if (not task or task in v.model.task_types) and keep(v.model)]
            matches = sorted(matches + trained, key=lambda v: v.model.id) if trained else matches
        page = matches[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(matches) else ""
        return page, next_token, len(matches)

    def list_families(
        self, task_type: int = 0, page_size: int = 0, page_token: str = "", project: str = "default"
    ) -> tuple[list[FamilyView], str]:
        violations: dict[str, str] = {}
        task = _task_type(task_type, violations)
        size = _page_size(page_size, violations)
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("families", task)
        offset = decode_page_token(page_token, fingerprint)

        stored = self._stored()
        counts: dict[str, list[int]] = {}
        tasks: dict[str, list[str]] = {}
        for model in self._by_task[task]:
            c = counts.setdefault(model.family, [0, 0])
            c[0] += 1
            c[1] += self._view(model, stored, project).weight_status == IN_STORE
            seen = tasks.setdefault(model.family, [])
            seen += [t for t in model.task_types if t not in seen]
        families = [
            FamilyView(
                family=self.catalog.families.get(name) or CatalogFamily(name, "", ()),
                task_types=tuple(tasks[name]),
                variant_count=c[0],
                weights_in_store_count=c[1],
            )
            for name, c in sorted(counts.items())
        ]
        page = families[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(families) else ""
        return page, next_token

    def list_presets(
        self, task_type: int = 0, data_type: int = 0, page_size: int = 0, page_token: str = "", project: str = "default"
    ) -> tuple[list[PresetView], str]:
        violations: dict[str, str] = {}
        task = _task_type(task_type, violations)
        size = _page_size(page_size, violations)
        data = None
        if data_type:
            data = common_pb2.DataType.Name(data_type) if data_type in common_pb2.DataType.values() else None
            if data is None:
                violations["data_type"] = f"unknown data type value {data_type}"
        if violations:
            raise InvalidArgument(violations)
        fingerprint = _fingerprint("presets", task, data)
        offset = decode_page_token(page_token, fingerprint)
        matches = [
            p
            for p in sorted(self.presets, key=lambda p: p.id)
            if (not task or p.task_type == task) and (not data or p.data_type == data)
        ]
        page = matches[offset : offset + size]
        next_token = encode_page_token(offset + size, fingerprint) if offset + size < len(matches) else ""
        stored = self._stored()
        return [self._preset_view(p, stored, project) for p in page], next_token

    def get_preset(self, preset_id: str) -> presets_mod.Preset:
        preset = self.presets_by_id.get(preset_id)
        if preset is None:
            raise NotFound(f"preset {preset_id!r} does not exist", metadata={"preset_id": preset_id})
        return preset

    def preset_view(self, preset_id: str, project: str = "default") -> PresetView:
        """The preset with whether it can train now (its weights' state for the project)."""
        return self._preset_view(self.get_preset(preset_id), self._stored(fresh=True), project)

    def _preset_view(self, preset: presets_mod.Preset, stored: dict, project: str) -> PresetView:
        model = self.catalog.by_id[preset.model_id]  # presets naming no catalog model were left out
        view = self._view(model, stored, project)
        return PresetView(preset, view.weight_status, model.backbone_model_id or model.id)
