"""The dataset domain: import -> images + manifest in the object store -> rows in SQL.

Synchronous and transport-free; the servicer calls it through asyncio.to_thread.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from threading import Lock
from typing import Any

from minio import Minio
from sqlalchemy.engine import Engine

from services.common import objectstore
from services.common.errors import AlreadyExists, InvalidArgument
from services.dataset import importer, preview
from services.dataset.models import DatasetRow, DatasetVersionRow
from services.dataset.settings import DatasetSettings
from services.dataset.store import DatasetRecord, DatasetStore, now

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "trainyard.dataset.manifest/v1"
MAX_NAME = 128
MAX_DESCRIPTION = 4096
MAX_REQUEST_ID = 128


@dataclass(frozen=True)
class CreateSpec:
    """What a client asks for in CreateDatasetMetadata (zero values mean defaults)."""

    name: str
    description: str = ""
    format: str = importer.FORMAT_AUTO
    archive_type: str = importer.ARCHIVE_AUTO
    val_fraction: float = 0.0  # 0 -> the default 0.2
    test_fraction: float = 0.0
    split_seed: int = 0
    request_id: str = ""


def validate_spec(spec: CreateSpec) -> importer.ImportOptions:
    violations: dict[str, str] = {}
    if not spec.name or len(spec.name) > MAX_NAME:
        violations["metadata.name"] = f"must be 1..{MAX_NAME} characters"
    elif spec.name != spec.name.strip() or any(ord(c) < 32 or c == "\x7f" for c in spec.name):
        violations["metadata.name"] = "must not start or end with spaces or contain control characters"
    if len(spec.description) > MAX_DESCRIPTION:
        violations["metadata.description"] = f"must be at most {MAX_DESCRIPTION} characters"
    if len(spec.request_id) > MAX_REQUEST_ID:
        violations["metadata.request_id"] = f"must be at most {MAX_REQUEST_ID} characters"
    for name, value in (("val_fraction", spec.val_fraction), ("test_fraction", spec.test_fraction)):
        if not 0.0 <= value <= 0.9:
            violations[f"metadata.{name}"] = f"must be in [0, 0.9], got {value}"
    val = spec.val_fraction or 0.2
    if "metadata.val_fraction" not in violations and "metadata.test_fraction" not in violations:
        if val + spec.test_fraction > 0.9:
            violations["metadata.test_fraction"] = (
                f"val_fraction ({val}) + test_fraction ({spec.test_fraction}) must leave at least 10% for training"
            )
    if violations:
        raise InvalidArgument(violations)
    return importer.ImportOptions(
        format=spec.format,
        archive_type=spec.archive_type,
        val_fraction=val,
        test_fraction=spec.test_fraction,
        split_seed=spec.split_seed,
    )


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:20]}"


def manifest_key(dataset_id: str, version_id: str) -> str:
    return f"manifests/{dataset_id}/{version_id}.json"


def build_manifest(
    project: str, dataset_id: str, version_id: str, number: int, result: importer.ImportResult
) -> dict[str, Any]:
    return {
        "schema": MANIFEST_SCHEMA,
        "dataset_id": dataset_id,
        "version_id": version_id,
        "number": number,
        "project": project,
        "source_format": result.format,
        "annotation_types": list(result.annotation_types),
        "task_types": result.task_types,
        "classes": list(result.classes),
        **({"ignore_index": result.ignore_index} if result.ignore_index is not None else {}),
        "cases": [c.manifest_entry() for c in result.cases],
    }


class Datasets:
    """Dataset operations for one caller's project at a time."""

    def __init__(self, engine: Engine, s3: Minio, settings: DatasetSettings) -> None:
        self.store = DatasetStore(engine)
        self.s3 = s3
        self.settings = settings
        self._manifests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = Lock()

    @property
    def limits(self) -> importer.ImportLimits:
        return importer.ImportLimits(
            max_uncompressed_bytes=self.settings.dataset_max_uncompressed_bytes,
            max_entries=self.settings.dataset_max_entries,
            max_image_pixels=self.settings.dataset_max_image_pixels,
        )

    def spool_dir(self) -> str | None:
        return self.settings.dataset_spool_dir or None

    # ------------------------------------------------------------ create

    def precheck(self, project: str, spec: CreateSpec) -> DatasetRecord | None:
        """Before the upload is read: the existing dataset for a retried request_id, else
        validate and fail fast when the name is taken."""
        validate_spec(spec)
        existing = self.store.find_by_request_id(project, spec.request_id)
        if existing is not None:
            return existing
        self._check_name(project, spec.name)
        return None

    def _check_name(self, project: str, name: str) -> None:
        if self.store.name_taken(project, name):
            raise AlreadyExists(
                f"a dataset named {name!r} already exists in project {project!r}", metadata={"name": name}
            )

    def create(self, project: str, spec: CreateSpec, archive_path: Path) -> DatasetRecord:
        """Import the archive and create the dataset with its first version, all or nothing."""
        options = validate_spec(spec)
        existing = self.store.find_by_request_id(project, spec.request_id)
        if existing is not None:
            return existing
        self._check_name(project, spec.name)
        workdir = Path(tempfile.mkdtemp(prefix="trainyard-import-", dir=self.spool_dir()))
        try:
            result = importer.import_archive(archive_path, workdir, options, self.limits)
            self._upload_images(result)
            dataset_id, version_id = new_id("ds"), new_id("dsv")
            manifest = build_manifest(project, dataset_id, version_id, 1, result)
            key = manifest_key(dataset_id, version_id)
            sha, size = objectstore.put_json(self.s3, objectstore.DATASETS_BUCKET, key, manifest)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        created = now()
        counts = result.class_counts()
        splits = result.split_counts()
        dataset = DatasetRow(
            id=dataset_id,
            project=project,
            name=spec.name,
            description=spec.description,
            request_id=spec.request_id or None,
            create_time=created,
            update_time=created,
        )
        version = DatasetVersionRow(
            id=version_id,
            dataset_id=dataset_id,
            project=project,
            number=1,
            manifest_bucket=objectstore.DATASETS_BUCKET,
            manifest_key=key,
            manifest_sha256=sha,
            manifest_size=size,
            case_count=len(result.cases),
            train_count=splits["train"],
            val_count=splits["val"],
            test_count=splits["test"],
            classes_json=json.dumps(
                [{"index": i, "name": n, "count": counts[i]} for i, n in enumerate(result.classes)]
            ),
            annotation_types_json=json.dumps(result.annotation_types),
            source_format=result.format,
            warnings_json=json.dumps(result.warnings),
            create_time=created,
        )
        try:
            record, made = self.store.create(dataset, version, result.task_types)
        except Exception:
            self._remove_manifest(key)  # no rows: leave no manifest either
            raise
        if not made:  # a concurrent retry won; this import's manifest is not referenced
            self._remove_manifest(key)
        with self._lock:
            self._manifests[version_id] = manifest
        log.info(
            "dataset created",
            extra={"dataset_id": record.dataset.id, "project": project, "cases": len(result.cases)},
        )
        return record

    def _upload_images(self, result: importer.ImportResult) -> None:
        def put(image: importer.StoredImage) -> None:
            if objectstore.exists(self.s3, objectstore.DATASETS_BUCKET, image.key):
                return  # content-addressed: the same bytes are already there
            self.s3.fput_object(
                objectstore.DATASETS_BUCKET,
                image.key,
                str(image.path),
                content_type=image.content_type,
                metadata={"sha256": image.sha256},
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(put, [*result.images.values(), *result.masks.values()]))

    def _remove_manifest(self, key: str) -> None:
        try:
            self.s3.remove_object(objectstore.DATASETS_BUCKET, key)
        except Exception:  # noqa: BLE001 - best effort; an unreferenced manifest is harmless
            log.warning("could not remove manifest", extra={"key": key}, exc_info=True)

    # ------------------------------------------------------------ reads

    def get(self, project: str, dataset_id: str) -> DatasetRecord:
        return self.store.get(project, dataset_id)

    def list(self, project: str, task_type: str | None, page_size: int, page_token: str):
        return self.store.list(project, task_type, page_size, page_token)

    def get_version(self, project: str, version_id: str) -> DatasetVersionRow:
        return self.store.get_version(project, version_id)

    def delete(self, project: str, dataset_id: str) -> None:
        """Deletes the metadata; manifests and images stay, since trained models may pin them."""
        self.store.delete(project, dataset_id)
        log.info("dataset deleted", extra={"dataset_id": dataset_id, "project": project})

    def manifest(self, version: DatasetVersionRow) -> dict[str, Any]:
        with self._lock:
            cached = self._manifests.get(version.id)
            if cached is not None:
                self._manifests.move_to_end(version.id)
                return cached
        value = objectstore.get_json(self.s3, version.manifest_bucket, version.manifest_key)
        with self._lock:
            self._manifests[version.id] = value
            while len(self._manifests) > 16:
                self._manifests.popitem(last=False)
        return value

    def preview(
        self,
        project: str,
        dataset_id: str,
        version_id: str = "",
        count: int = 0,
        thumbnail_size: int = 0,
        split: str | None = None,
        seed: int = 0,
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Sampled manifest cases, each with "preview_jpeg" added, and the class names."""
        count, size = preview.validate_preview_args(count, thumbnail_size, split)
        record = self.store.get(project, dataset_id)
        version = record.version
        if version_id:
            version = self.store.get_version(project, version_id)
            if version.dataset_id != dataset_id:
                raise InvalidArgument({"version_id": f"version {version_id!r} is not a version of {dataset_id!r}"})
        if version is None:
            return [], []
        manifest = self.manifest(version)
        classes = manifest["classes"]
        chosen = preview.sample_cases(manifest["cases"], count, seed, split)

        def render(case: dict[str, Any]) -> dict[str, Any]:
            data = objectstore.get_bytes(self.s3, objectstore.DATASETS_BUCKET, case["image_key"])
            return {**case, "preview_jpeg": preview.render_thumbnail(data, classes[case["label"]], size)}

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(render, chosen)), classes
