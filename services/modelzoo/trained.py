"""ModelZoo's trained models: a finished task's model joins its project's zoo as trained/<task id>."""

from __future__ import annotations

import json
import logging
import math
import re
from datetime import UTC, datetime

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, select

from kernel import contract, objectstore
from kernel.errors import (
    AlreadyExists,
    InvalidArgument,
    NotFound,
)
from services.modelzoo.catalog import CatalogModel, Metric
from services.modelzoo.models import TrainedModelRow
from services.modelzoo.views import (
    _SHA256,
    _TASK_ID,
    IN_STORE,
    LIBRARIES,
    TASK_ARTIFACTS_PREFIX,
    TASK_TYPE_NAMES,
    TRAINED_PREFIX,
    Lineage,
    ModelView,
    StoredWeights,
    TrainedModelInput,
)

log = logging.getLogger(__name__)


class TrainedModels:
    """The project's trained models (trained/<task id>): views, registration, deletion (a part of ModelZoo)."""

    def _trained_rows(self, project: str) -> list[TrainedModelRow]:
        with Session(self.engine) as session:
            return list(session.exec(select(TrainedModelRow).where(TrainedModelRow.project == project)).all())

    def _trained_view(self, row: TrainedModelRow) -> ModelView:
        base = self.catalog.get(row.base_model_id)
        family = base.family if base is not None else row.architecture.split("+")[0]
        metrics = {k: float(v) for k, v in json.loads(row.metrics_json).items()}
        classes = tuple(json.loads(row.class_names_json))
        created = row.created_at if row.created_at.tzinfo else row.created_at.replace(tzinfo=UTC)
        model = CatalogModel(
            id=f"{TRAINED_PREFIX}{row.task_id}",
            family=family,
            variant=row.architecture,
            task_types=(row.task_type,),
            architecture=row.architecture,
            library=row.library,
            library_version=base.library_version if base is not None else "",
            pretrain_dataset=f"dataset:{row.dataset_id}",
            pretrain_tag=row.dataset_version_id,
            license=base.license if base is not None else "",
            num_params=base.num_params if base is not None else 0,
            gflops=base.gflops if base is not None else 0.0,
            default_input_size=row.default_input_size,
            resize_size=row.default_input_size,
            mean=tuple(json.loads(row.mean_json)),
            std=tuple(json.loads(row.std_json)),
            interpolation=base.interpolation if base is not None else "bilinear",
            reference_metrics=tuple(
                Metric(name, value, f"dataset:{row.dataset_version_id}", f"task:{row.task_id}")
                for name, value in sorted(metrics.items())
            ),
            pretrained_num_classes=len(classes),
            source_url=f"task:{row.task_id}",
            weights_url="",
            hf_hub_id="",
            weight_files=(),
            training_modes=("retraining",),
            backbone=base.backbone if base is not None else "",
            backbone_model_id="",
        )
        weights = StoredWeights(
            row.weights_bucket,
            row.weights_key,
            row.weights_sha256,
            row.weights_size_bytes,
            f"task:{row.task_id}",
            created,
        )
        lineage = Lineage(
            name=row.name,
            base_model_id=row.base_model_id,
            dataset_id=row.dataset_id,
            dataset_version_id=row.dataset_version_id,
            task_id=row.task_id,
            class_names=classes,
            metrics=metrics,
            created_at=created,
        )
        return ModelView(model, IN_STORE, weights, lineage=lineage)

    def get_trained_model_row(self, model_id: str, project: str) -> TrainedModelRow:
        """The project's trained model `trained/<task id>`: INVALID_ARGUMENT for another id, NOT_FOUND."""
        task_id = model_id.removeprefix(TRAINED_PREFIX)
        if not model_id.startswith(TRAINED_PREFIX) or not _TASK_ID.fullmatch(task_id):
            raise InvalidArgument({"model_id": f"must be a trained model id, {TRAINED_PREFIX}<task id>"})
        with Session(self.engine) as session:
            row = session.get(TrainedModelRow, (project, task_id))
        if row is None:
            raise NotFound(
                f"trained model {model_id!r} not found in project {project!r}", metadata={"model_id": model_id}
            )
        return row

    def delete_trained_model(self, model_id: str, project: str) -> None:
        """Remove the trained model from the project's zoo; its weights stay with its training task."""
        row = self.get_trained_model_row(model_id, project)
        with Session(self.engine) as session, session.begin():
            stored = session.get(TrainedModelRow, (project, row.task_id))
            if stored is not None:
                session.delete(stored)
        log.info("deleted trained model", extra={"project": project, "model_id": model_id})

    def register_trained_model(self, req: TrainedModelInput, project: str = "default") -> ModelView:
        """Add (idempotently) a trained model to the project's zoo as `trained/<task_id>`."""
        violations: dict[str, str] = {}
        if not _TASK_ID.fullmatch(req.task_id):
            violations["task_id"] = f"must be 1-128 letters, digits, '_', '.', '-', got {req.task_id!r}"
        if not req.name.strip() or len(req.name) > 256:
            violations["name"] = "must be 1-256 characters"
        task = TASK_TYPE_NAMES.get(req.task_type)
        if task is None:
            violations["task_type"] = f"must be a task type, got {req.task_type}"
        if req.library not in LIBRARIES:
            violations["library"] = f"must be one of {', '.join(LIBRARIES)}, got {req.library!r}"
        if not req.architecture or len(req.architecture) > 256:
            violations["architecture"] = "must be 1-256 characters"
        if not req.class_names or any(not c for c in req.class_names):
            violations["class_names"] = "must list at least one non-empty class name"
        elif len(set(req.class_names)) != len(req.class_names):
            violations["class_names"] = "must be unique"
        if not req.dataset_id:
            violations["dataset_id"] = "must name the dataset the model was trained on"
        if not req.dataset_version_id:
            violations["dataset_version_id"] = "must name the dataset version the model was trained on"
        if not req.weights_key:
            violations["weights.key"] = "must name the trained weights object (model.pt)"
        if req.weights_bucket != objectstore.ARTIFACTS_BUCKET:
            violations["weights.bucket"] = f"must be the training artifacts bucket {objectstore.ARTIFACTS_BUCKET!r}"
        if req.weights_key and not req.weights_key.startswith(TASK_ARTIFACTS_PREFIX):
            violations["weights.key"] = f"must be a training task's artifact ({TASK_ARTIFACTS_PREFIX}<task id>/...)"
        if req.weights_sha256 and not _SHA256.fullmatch(req.weights_sha256):
            violations["weights.sha256"] = "must be 64 lower-case hex digits or empty"
        if req.weights_size_bytes < 0:
            violations["weights.size_bytes"] = "must not be negative"
        if not 0 <= req.default_input_size <= 4096:
            violations["default_input_size"] = f"must be in 0..4096, got {req.default_input_size}"
        for name, values in (("mean", req.mean), ("std", req.std)):
            if values and (len(values) != 3 or not all(math.isfinite(v) for v in values)):
                violations[name] = "must be empty or 3 finite numbers"
        if any(v <= 0 for v in req.std):
            violations["std"] = "must be positive"
        bad_metrics = [
            k for k, v in req.metrics.items() if not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", k) or math.isnan(v)
        ]
        if bad_metrics:
            violations["metrics"] = f"names must be snake_case and values numbers: {', '.join(sorted(bad_metrics)[:5])}"
        base: CatalogModel | None = None
        if not req.base_model_id:
            violations["base_model_id"] = "must name the model the training started from"
        elif req.base_model_id.startswith(TRAINED_PREFIX):
            try:
                base = self.get_model(req.base_model_id, project).model
            except NotFound:
                violations["base_model_id"] = f"no trained model {req.base_model_id!r} in this project"
        else:
            base = self.catalog.get(req.base_model_id)
            if base is None:
                violations["base_model_id"] = f"{req.base_model_id!r} is not in the zoo catalog"
        if violations:
            raise InvalidArgument(violations)

        with Session(self.engine) as session:
            if req.request_id:
                prior = session.exec(
                    select(TrainedModelRow).where(
                        TrainedModelRow.project == project, TrainedModelRow.request_id == req.request_id
                    )
                ).first()
                if prior is not None:
                    if prior.task_id != req.task_id:
                        raise AlreadyExists(
                            f"request_id {req.request_id!r} already registered trained/{prior.task_id}",
                            metadata={"request_id": req.request_id},
                        )
                    return self._trained_view(prior)
            existing = session.get(TrainedModelRow, (project, req.task_id))
            if existing is not None:
                if (existing.weights_bucket, existing.weights_key, existing.weights_sha256) == (
                    req.weights_bucket,
                    req.weights_key,
                    req.weights_sha256,
                ):
                    return self._trained_view(existing)
                raise AlreadyExists(
                    f"trained/{req.task_id} is already registered with other weights",
                    metadata={"model_id": f"{TRAINED_PREFIX}{req.task_id}"},
                )
            mean = req.mean or (base.mean if base is not None else contract.IMAGENET_MEAN)
            std = req.std or (base.std if base is not None else contract.IMAGENET_STD)
            row = TrainedModelRow(
                project=project,
                task_id=req.task_id,
                request_id=req.request_id or None,
                name=req.name.strip(),
                base_model_id=req.base_model_id,
                task_type=task,
                library=req.library,
                architecture=req.architecture,
                class_names_json=json.dumps(list(req.class_names)),
                metrics_json=json.dumps({k: float(v) for k, v in sorted(req.metrics.items())}),
                mean_json=json.dumps([float(v) for v in mean]),
                std_json=json.dumps([float(v) for v in std]),
                dataset_id=req.dataset_id,
                dataset_version_id=req.dataset_version_id,
                default_input_size=req.default_input_size or (base.default_input_size if base is not None else 224),
                weights_bucket=req.weights_bucket,
                weights_key=req.weights_key,
                weights_sha256=req.weights_sha256,
                weights_size_bytes=req.weights_size_bytes,
                created_at=datetime.now(UTC),
            )
            session.add(row)
            try:
                session.commit()
            except IntegrityError:  # a concurrent registration of the same task or request won
                session.rollback()
                existing = session.get(TrainedModelRow, (project, req.task_id))
                if existing is None:
                    raise
                return self._trained_view(existing)
            session.refresh(row)
            log.info(
                "registered trained model",
                extra={"project": project, "task_id": req.task_id, "base_model_id": req.base_model_id},
            )
            return self._trained_view(row)
