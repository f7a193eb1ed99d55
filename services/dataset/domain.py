"""The dataset domain: import -> images + manifest in the object store -> rows in SQL.

Synchronous and transport-free; the servicer calls it through asyncio.to_thread.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from threading import Lock
from typing import Any, TypeVar

from minio import Minio
from sqlalchemy.engine import Engine

from kernel import fields, objectstore
from kernel.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
    TrainyardError,
    Unavailable,
)
from services.dataset import export, importer, preview, stats
from services.dataset.import_store import RUNNING, ImportStore
from services.dataset.models import DatasetRow, DatasetVersionRow, ImportRow
from services.dataset.settings import DatasetSettings
from services.dataset.store import DatasetRecord, DatasetStore, now

log = logging.getLogger(__name__)

MANIFEST_SCHEMA = "trainyard.dataset.manifest/v1"


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
    accept_partial: bool = False
    ignore_index: int = 255
    task: str = ""
    drop_duplicates: bool = False


def validate_spec(spec: CreateSpec) -> importer.ImportOptions:
    violations = fields.text_violations(
        {"metadata.name": ("name", spec.name), "metadata.description": ("description", spec.description)},
        required={"metadata.name"},
    )
    if len(spec.request_id) > fields.MAX_REQUEST_ID:
        violations["metadata.request_id"] = f"must be at most {fields.MAX_REQUEST_ID} characters"
    for name, value in (("val_fraction", spec.val_fraction), ("test_fraction", spec.test_fraction)):
        if not 0.0 <= value <= 0.9:
            violations[f"metadata.{name}"] = f"must be in [0, 0.9], got {value}"
    val = spec.val_fraction or 0.2
    if "metadata.val_fraction" not in violations and "metadata.test_fraction" not in violations:
        if val + spec.test_fraction > 0.9:
            violations["metadata.test_fraction"] = (
                f"val_fraction ({val}) + test_fraction ({spec.test_fraction}) must leave at least 10% for training"
            )
    if not 0 <= spec.ignore_index <= 255:
        violations["metadata.ignore_index"] = f"must be in [0, 255], got {spec.ignore_index}"
    if violations:
        raise InvalidArgument(violations)
    return importer.ImportOptions(
        accept_partial=spec.accept_partial,
        ignore_index=spec.ignore_index,
        drop_duplicates=spec.drop_duplicates,
        task=spec.task,
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


MODE_ADD_OR_REPLACE = "add_or_replace"
MODE_REPLACE_ALL = "replace_all"
ANNOTATION_ORDER = ["label", "box", "mask", "polygon"]
Progress = Callable[[int, int], None]
Notice = Callable[[str], None]  # a status line for the import (e.g. waiting for the object store)
T = TypeVar("T")


@dataclass
class ImportReport:
    """What one import reports beyond its outcome: every warning and rejected (skipped) file."""

    import_id: str
    warnings: list[str] = field(default_factory=list)
    rejected: list[tuple[str, str]] = field(default_factory=list)

    def collect(self, result: importer.ImportResult) -> None:
        self.warnings = list(result.warnings)
        self.rejected = list(result.rejected)


@dataclass(frozen=True)
class VersionSpec:
    """What a client asks for in CreateDatasetVersionMetadata."""

    dataset_id: str
    mode: str = MODE_ADD_OR_REPLACE
    format: str = importer.FORMAT_AUTO
    archive_type: str = importer.ARCHIVE_AUTO
    val_fraction: float = 0.0
    test_fraction: float = 0.0
    split_seed: int = 0
    accept_partial: bool = False
    request_id: str = ""
    ignore_index: int = 255
    drop_duplicates: bool = False


def version_row(
    project: str,
    manifest: dict[str, Any],
    stored: tuple[str, str, int],
    statistics: dict[str, Any],
    source_format: str,
    warnings: list[str],
    created,
) -> DatasetVersionRow:
    key, sha, size = stored
    cases = manifest["cases"]
    splits = {s: sum(1 for c in cases if c["split"] == s) for s in importer.SPLITS}
    return DatasetVersionRow(
        id=manifest["version_id"],
        dataset_id=manifest["dataset_id"],
        project=project,
        number=manifest["number"],
        manifest_bucket=objectstore.DATASETS_BUCKET,
        manifest_key=key,
        manifest_sha256=sha,
        manifest_size=size,
        case_count=len(cases),
        train_count=splits["train"],
        val_count=splits["val"],
        test_count=splits["test"],
        classes_json=json.dumps(
            [{"index": c["index"], "name": c["name"], "count": c["instance_count"]} for c in statistics["classes"]]
        ),
        annotation_types_json=json.dumps(manifest["annotation_types"]),
        source_format=source_format,
        warnings_json=json.dumps(importer.cap_warnings(warnings)),
        create_time=created,
        stats_json=json.dumps(statistics),
        ignore_index=manifest.get("ignore_index"),
    )


def _kind(annotation_types) -> str:
    types = set(annotation_types)
    return "label" if "label" in types else "mask" if "mask" in types else "box"


def merge_cases(
    old: dict[str, Any], result: importer.ImportResult, mode: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """(classes, cases) of the next version: new cases added (replacing same source paths), or all
    replaced; classes merged by name (new names appended) with the new cases' indices remapped."""
    if _kind(old["annotation_types"]) != _kind(result.annotation_types):
        raise FailedPrecondition(
            f"the new data has {', '.join(result.annotation_types)} annotations but the dataset has "
            f"{', '.join(old['annotation_types'])}; a version keeps the kind of annotation"
        )
    classes = list(old["classes"]) if mode != MODE_REPLACE_ALL else []
    if "mask" in result.annotation_types and mode != MODE_REPLACE_ALL:
        if result.classes[: len(classes)] != classes[: len(result.classes)]:
            raise FailedPrecondition(
                f"mask class list {result.classes} does not match the dataset's {classes}: mask values are class indices"
            )
    for name in result.classes:
        if name not in classes:
            classes.append(name)
    remap = [classes.index(n) for n in result.classes]
    kept = [] if mode == MODE_REPLACE_ALL else list(old["cases"])
    new_paths = {c.source_path for c in result.cases}
    kept = [c for c in kept if c["source_path"] not in new_paths]
    next_number = 1 + max((int(c["id"].lstrip("c") or 0) for c in kept if c["id"].lstrip("c").isdigit()), default=0)
    out = list(kept)
    for i, case in enumerate(result.cases):
        entry = case.manifest_entry()
        entry["id"] = f"c{next_number + i:06d}"
        if "label" in entry:
            entry["label"] = remap[entry["label"]]
        for box in entry.get("boxes") or ():
            box["class"] = remap[box["class"]]
        out.append(entry)
    if not out:
        raise InvalidArgument({"archive": "the new version would be empty"})
    return classes, out


class ImportObjectStore:
    """The object-store calls of one import. Each waits out an outage (connection refused/reset, timeouts,
    5xx) of up to `retry_s` with backoff (objectstore.call_with_retry); a refusal fails at once. The first
    call to fail for good ends the others' waits (parallel uploads), so a 10,000-image import does not wait
    the window once per image. An outage that outlasts the window is UNAVAILABLE naming the store and what
    was being written; since rows are written only after every object, nothing is left behind but
    content-addressed images (harmless, reused by the retry)."""

    def __init__(self, endpoint: str, retry_s: float, notice: Notice | None = None) -> None:
        self.endpoint = endpoint
        self.retry_s = retry_s
        self.notice = notice
        self.stop = threading.Event()
        self.retries = 0  # calls repeated after a transient failure (logs, tests)
        self.failure: BaseException | None = None  # the first call that failed for good
        self._lock = Lock()

    def call(self, what: str, fn: Callable[[], T]) -> T:
        """fn() for `what` ("storing image images/..."), waited out through an outage."""
        waited = False

        def on_retry(error: BaseException, wait_s: float, left_s: float) -> None:
            nonlocal waited
            waited = True
            with self._lock:
                self.retries += 1
            log.warning(
                "object store unavailable during an import; waiting for it",
                extra={
                    "endpoint": self.endpoint,
                    "writing": what,
                    "left_s": round(left_s, 1),
                    "error": objectstore.describe(error),
                },
            )
            self.say(
                f"waiting for the object store at {self.endpoint} ({what} failed: {objectstore.describe(error)}); "
                f"retrying for up to {left_s:.0f} s more"
            )

        try:
            result = objectstore.call_with_retry(fn, retry_s=self.retry_s, on_retry=on_retry, stop=self.stop)
        except Exception as exc:
            error = self.fail(what, exc)
            if error is exc:
                raise
            raise error from None
        if waited:
            self.say(f"the object store at {self.endpoint} is back; going on")
        return result

    def fail(self, what: str, exc: Exception) -> BaseException:
        """Records the import's first failure (an outage turned UNAVAILABLE) and stops the other calls."""
        with self._lock:
            if self.failure is None:
                self.failure = exc
                if objectstore.is_transient(exc):
                    log.warning(
                        "object store unavailable during an import; giving up",
                        extra={"endpoint": self.endpoint, "writing": what, "error": repr(exc)[:300]},
                    )
                    self.failure = Unavailable(
                        f"the object store at {self.endpoint} was unavailable for more than {self.retry_s:g} s "
                        f"while {what} ({objectstore.describe(exc)}); nothing was created: retry the import later "
                        "(the same request_id is safe)",
                        reason="OBJECT_STORE_UNAVAILABLE",
                        metadata={"endpoint": self.endpoint, "writing": what},
                    )
            self.stop.set()
            return self.failure

    def say(self, message: str) -> None:
        if self.notice is not None:
            try:
                self.notice(message)
            except Exception:  # noqa: BLE001 - a status line must not fail the import
                log.warning("could not report import status", exc_info=True)


class Datasets:
    """Dataset operations for one caller's project at a time."""

    def __init__(self, engine: Engine, s3: Minio, settings: DatasetSettings, *, import_s3: Minio | None = None) -> None:
        self.store = DatasetStore(engine)
        self.s3 = s3
        # Imports write through a client without the SDK's own retries (make_client(retries=1)), so that
        # dataset_object_store_retry_s governs how long an outage is waited for.
        self.import_s3 = import_s3 if import_s3 is not None else s3
        # Links handed to clients are signed for the public endpoint, never the internal one (none: no links).
        self.public_s3 = objectstore.public_client(settings)
        self.settings = settings
        self._manifests: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._lock = Lock()
        self.imports = ImportStore(engine)
        self.imports.fail_interrupted(settings.dataset_import_stall_s)
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="dataset-import")

    @property
    def limits(self) -> importer.ImportLimits:
        return importer.ImportLimits(
            max_uncompressed_bytes=self.settings.dataset_max_uncompressed_bytes,
            max_entries=self.settings.dataset_max_entries,
            max_image_pixels=self.settings.dataset_max_image_pixels,
            max_entry_bytes=self.settings.dataset_max_entry_bytes,
            max_compression_ratio=self.settings.dataset_max_compression_ratio,
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

    def object_store(self, notice: Notice | None = None) -> ImportObjectStore:
        """The object-store calls of one import (waits out an outage of dataset_object_store_retry_s)."""
        return ImportObjectStore(self.settings.s3_endpoint, self.settings.dataset_object_store_retry_s, notice)

    def create(
        self,
        project: str,
        spec: CreateSpec,
        archive_path: Path,
        progress: Progress | None = None,
        notice: Notice | None = None,
        report: ImportReport | None = None,
    ) -> DatasetRecord:
        """Import the archive and create the dataset with its first version, all or nothing. `report`
        collects the import's warnings and rejected files and names the import the version came from."""
        options = validate_spec(spec)
        existing = self.store.find_by_request_id(project, spec.request_id)
        if existing is not None:
            return existing
        self._check_name(project, spec.name)
        calls = self.object_store(notice)
        workdir = Path(tempfile.mkdtemp(prefix="trainyard-import-", dir=self.spool_dir()))
        try:
            result = importer.import_archive(archive_path, workdir, options, self.limits, progress)
            if report is not None:
                report.collect(result)
            if progress is not None:
                progress(-1, 0)  # uploading
            self._upload_images(result, calls)
            dataset_id, version_id = new_id("ds"), new_id("dsv")
            manifest = build_manifest(project, dataset_id, version_id, 1, result)
            key = manifest_key(dataset_id, version_id)
            sha, size = self._put_manifest(key, manifest, calls)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        created = now()
        dataset = DatasetRow(
            id=dataset_id,
            project=project,
            name=spec.name,
            description=spec.description,
            request_id=spec.request_id or None,
            create_time=created,
            update_time=created,
        )
        statistics = stats.compute(
            manifest["cases"],
            result.classes,
            grayscale=result.grayscale,
            mask_classes=result.mask_classes,
            rejected=result.rejected,
        )
        version = version_row(project, manifest, (key, sha, size), statistics, result.format, result.warnings, created)
        version.import_id = report.import_id if report is not None else None
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

    def create_version(
        self,
        project: str,
        spec: VersionSpec,
        archive_path: Path,
        progress: Progress | None = None,
        notice: Notice | None = None,
        report: ImportReport | None = None,
    ) -> DatasetVersionRow:
        """Import the archive and add it to the latest version as the next version, all or nothing."""
        options = validate_spec(
            CreateSpec(
                name="version",
                format=spec.format,
                archive_type=spec.archive_type,
                val_fraction=spec.val_fraction,
                test_fraction=spec.test_fraction,
                split_seed=spec.split_seed,
                request_id=spec.request_id,
                accept_partial=spec.accept_partial,
                ignore_index=spec.ignore_index,
                drop_duplicates=spec.drop_duplicates,
            )
        )
        record = self.store.get(project, spec.dataset_id)
        if spec.request_id:
            done = self.store.find_version_by_request_id(project, spec.dataset_id, spec.request_id)
            if done is not None:
                return done
        parent = record.version
        if parent is None:
            raise FailedPrecondition(f"dataset {spec.dataset_id!r} has no version to build on")
        calls = self.object_store(notice)
        old = calls.call(f"reading the manifest of version {parent.number}", lambda: self.manifest(parent))
        old_stats = json.loads(parent.stats_json or "{}")
        workdir = Path(tempfile.mkdtemp(prefix="trainyard-import-", dir=self.spool_dir()))
        try:
            result = importer.import_archive(archive_path, workdir, options, self.limits, progress)
            if report is not None:
                report.collect(result)
            merged_classes, new_cases = merge_cases(old, result, spec.mode)
            if progress is not None:
                progress(-1, 0)
            self._upload_images(result, calls)
            version_id = new_id("dsv")
            number = parent.number + 1
            annotation_types = sorted(
                set(result.annotation_types)
                | (set() if spec.mode == MODE_REPLACE_ALL else set(old["annotation_types"])),
                key=ANNOTATION_ORDER.index,
            )
            manifest = {
                **{k: v for k, v in old.items() if k not in ("cases",)},
                "version_id": version_id,
                "number": number,
                "source_format": result.format,
                "annotation_types": annotation_types,
                "task_types": importer.task_types_for(annotation_types),
                "classes": merged_classes,
                "cases": new_cases,
            }
            if result.ignore_index is not None:
                manifest["ignore_index"] = result.ignore_index
            key = manifest_key(spec.dataset_id, version_id)
            sha, size = self._put_manifest(key, manifest, calls)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        grayscale = set(old_stats.get("_grayscale", [])) | result.grayscale
        mask_classes = {**old_stats.get("_mask_classes", {}), **result.mask_classes}
        statistics = stats.compute(
            new_cases, merged_classes, grayscale=grayscale, mask_classes=mask_classes, rejected=result.rejected
        )
        version = version_row(project, manifest, (key, sha, size), statistics, result.format, result.warnings, now())
        version.parent_version_id = parent.id
        version.request_id = spec.request_id or None
        version.import_id = report.import_id if report is not None else None
        try:
            self.store.add_version(record.dataset.id, parent.id, version, manifest["task_types"])
        except Exception:
            self._remove_manifest(key)
            raise
        with self._lock:
            self._manifests[version_id] = manifest
        log.info("dataset version created", extra={"dataset_id": spec.dataset_id, "version": number})
        return version

    def _upload_images(self, result: importer.ImportResult, calls: ImportObjectStore) -> None:
        s3 = self.import_s3
        images = [*result.images.values(), *result.masks.values()]
        stored = 0
        count_lock = Lock()

        def put(image: importer.StoredImage) -> None:
            nonlocal stored
            if calls.stop.is_set():  # an upload failed for good: store nothing more
                return
            # Content-addressed: bytes already there need no upload. For a small image the check
            # costs as much as the PUT it might save (it halved import throughput), so just PUT.
            if image.size > importer.SMALL_IMAGE_BYTES and calls.call(
                f"checking image {image.key}", lambda: objectstore.exists(s3, objectstore.DATASETS_BUCKET, image.key)
            ):
                return
            meta = {"sha256": image.sha256}
            if image.data is not None:
                calls.call(
                    f"storing image {image.key}",
                    lambda: s3.put_object(  # a fresh stream per try
                        objectstore.DATASETS_BUCKET,
                        image.key,
                        io.BytesIO(image.data),
                        image.size,
                        content_type=image.content_type,
                        metadata=meta,
                    ),
                )
            else:
                calls.call(
                    f"storing image {image.key}",
                    lambda: s3.fput_object(
                        objectstore.DATASETS_BUCKET,
                        image.key,
                        str(image.path),
                        content_type=image.content_type,
                        metadata=meta,
                    ),
                )
            with count_lock:
                stored += 1
                done = stored
            if done % 250 == 0:
                calls.say(f"storing images: {done} of {len(images)}")

        def guarded(image: importer.StoredImage) -> None:
            try:
                put(image)
            except Exception as exc:  # noqa: BLE001 - the first failure is raised below, once
                calls.fail(f"storing image {image.key}", exc)

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(guarded, images))
        if calls.failure is not None:
            raise calls.failure

    def _put_manifest(self, key: str, manifest: dict[str, Any], calls: ImportObjectStore) -> tuple[str, int]:
        return calls.call(
            f"storing the manifest {objectstore.DATASETS_BUCKET}/{key}",
            lambda: objectstore.put_json(self.import_s3, objectstore.DATASETS_BUCKET, key, manifest),
        )

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
        class_names: list[str] | tuple[str, ...] = (),
    ) -> tuple[list[dict[str, Any]], list[str]]:
        """Sampled manifest cases, each with "preview_jpeg", "image_url" (and "mask_png") added, and
        the class names. `class_names` keeps the cases with an annotation of one of those classes."""
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
        unknown = [n for n in class_names if n not in classes]
        if unknown:
            raise InvalidArgument({"class_names": f"unknown class(es) {unknown}; the dataset has {classes}"})
        wanted = {classes.index(n) for n in class_names}
        mask_classes = json.loads(version.stats_json or "{}").get("_mask_classes", {})
        chosen = preview.sample_cases(manifest["cases"], count, seed, split, wanted, mask_classes)
        ignore = int(manifest.get("ignore_index", 255))

        def render(case: dict[str, Any]) -> dict[str, Any]:
            data = objectstore.get_bytes(self.s3, objectstore.DATASETS_BUCKET, case["image_key"])
            mask = None
            if case.get("mask_key"):
                mask = objectstore.get_bytes(self.s3, objectstore.DATASETS_BUCKET, case["mask_key"])
            jpeg = preview.render_case(data, case, classes, size, mask_bytes=mask, ignore_index=ignore)
            url = self.link(objectstore.DATASETS_BUCKET, case["image_key"], timedelta(minutes=15))
            out = {**case, "preview_jpeg": jpeg, "image_url": url}
            if mask is not None:
                out["mask_png"] = mask
            return out

        with ThreadPoolExecutor(max_workers=8) as pool:
            return list(pool.map(render, chosen)), classes

    def link(self, bucket: str, key: str, expires: timedelta) -> str:
        """A presigned GET on the public endpoint (TRAINYARD_S3_PUBLIC_ENDPOINT); "" when none is configured."""
        if self.public_s3 is None:
            return ""
        return self.public_s3.presigned_get_object(bucket, key, expires=expires)

    # ------------------------------------------------------------ export

    def export(self, project: str, version_id: str, fmt: str) -> tuple[dict[str, Any], str]:
        """Write the version as a zip to the artifacts bucket; (object ref fields, presigned URL)."""
        version = self.store.get_version(project, version_id)
        manifest = self.manifest(version)
        fd, name = tempfile.mkstemp(prefix="trainyard-export-", suffix=".zip", dir=self.spool_dir())
        os.close(fd)
        path = Path(name)
        try:
            export.write_export(
                manifest, lambda key: objectstore.get_bytes(self.s3, objectstore.DATASETS_BUCKET, key), fmt, path
            )
            sha = hashlib.sha256()
            with open(path, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    sha.update(chunk)
            key = f"exports/{version.dataset_id}/{version_id}/{fmt}.zip"
            self.s3.fput_object(objectstore.ARTIFACTS_BUCKET, key, str(path), content_type="application/zip")
            size = path.stat().st_size
        finally:
            path.unlink(missing_ok=True)
        url = self.link(objectstore.ARTIFACTS_BUCKET, key, timedelta(hours=1))
        return {"bucket": objectstore.ARTIFACTS_BUCKET, "key": key, "sha256": sha.hexdigest(), "size_bytes": size}, url

    # ------------------------------------------------------------ imports from the upload bucket

    def start_import(self, project: str, bucket: str, key: str, spec: CreateSpec | VersionSpec) -> ImportRow:
        """Check the request, record a pending import and run it in the background."""
        if isinstance(spec, VersionSpec):
            self.store.get(project, spec.dataset_id)  # NOT_FOUND before anything else
        if bucket != objectstore.UPLOADS_BUCKET:
            raise InvalidArgument({"source.bucket": f"must be the upload bucket {objectstore.UPLOADS_BUCKET!r}"})
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise InvalidArgument({"source.key": "must be a relative object key"})
        if isinstance(spec, CreateSpec):
            existing = self.precheck(project, spec)
            if existing is not None and existing.version is not None:
                return self.imports.record_done(project, existing.dataset.id, existing.version.id)
        else:
            validate_spec(CreateSpec(name="version", val_fraction=spec.val_fraction, test_fraction=spec.test_fraction))
            self.store.get(project, spec.dataset_id)
        try:
            info = self.s3.stat_object(bucket, key)
        except Exception as exc:  # noqa: BLE001 - minio raises S3Error for a missing object
            if objectstore.is_transient(exc):  # nothing started yet: the client retries the call
                raise Unavailable(
                    f"the object store at {self.settings.s3_endpoint} is unavailable ({objectstore.describe(exc)}); "
                    "retry the import later",
                    reason="OBJECT_STORE_UNAVAILABLE",
                    metadata={"endpoint": self.settings.s3_endpoint},
                ) from None
            raise NotFound(f"object {bucket}/{key} not found", metadata={"key": key}) from None
        limit = self.settings.dataset_max_upload_bytes
        if (info.size or 0) > limit:
            raise ResourceExhausted(
                f"the archive is over the limit of {limit} bytes", metadata={"limit_bytes": str(limit)}
            )
        row = self.imports.create(project)
        self._pool.submit(self._run_import, row.id, project, bucket, key, spec)
        return row

    def _run_import(self, import_id: str, project: str, bucket: str, key: str, spec: CreateSpec | VersionSpec) -> None:
        """The background part of ImportDataset: download, then run_recorded; every outcome ends in the row."""
        fd, name = tempfile.mkstemp(prefix="trainyard-upload-", suffix=".archive", dir=self.spool_dir())
        os.close(fd)
        path = Path(name)

        def notice(message: str) -> None:  # e.g. waiting for the object store: WatchImport streams it
            self.imports.update(import_id, message=message)

        def progress(done: int, total: int) -> None:
            if done < 0:
                self.imports.update(import_id, message="storing images")
            else:
                self.imports.update(import_id, done=done, total=total, message="reading and checking images")

        try:
            self.imports.update(import_id, state="running", message=f"downloading {key}")
            try:
                self.object_store(notice).call(
                    f"downloading the archive {bucket}/{key}",
                    lambda: self.import_s3.fget_object(bucket, key, str(path)),
                )
            except TrainyardError as exc:
                self.imports.fail(import_id, exc.message)
                return
            self.run_recorded(import_id, project, spec, path, progress, notice)
        except TrainyardError as exc:  # recorded in the row by run_recorded; nobody waits for this thread
            log.info("import failed", extra={"import_id": import_id, "error": exc.message[:300]})
        except Exception as exc:  # noqa: BLE001 - as above; a failure before run_recorded is recorded here
            log.exception("import failed", extra={"import_id": import_id})
            self.imports.fail(import_id, f"internal error: {exc}")
        finally:
            path.unlink(missing_ok=True)

    def run_recorded(
        self,
        import_id: str,
        project: str,
        spec: CreateSpec | VersionSpec,
        archive_path: Path,
        progress: Progress | None = None,
        notice: Notice | None = None,
    ) -> DatasetRecord | DatasetVersionRow:
        """Create the dataset (CreateSpec) or version (VersionSpec) from the archive, recording the outcome
        and the full report in import `import_id`. A refusal over bad files names the import (its report
        lists every file; the error itself must fit gRPC's trailers)."""
        report = ImportReport(import_id)
        beating = threading.Event()
        threading.Thread(target=self._heartbeat, args=(import_id, beating), daemon=True).start()
        try:
            if isinstance(spec, CreateSpec):
                made: DatasetRecord | DatasetVersionRow = self.create(
                    project, spec, archive_path, progress, notice, report
                )
                dataset_id, version_id = made.dataset.id, made.version.id if made.version else None
            else:
                made = self.create_version(project, spec, archive_path, progress, notice, report)
                dataset_id, version_id = made.dataset_id, made.id
        except importer.ImportRejected as exc:
            self.imports.fail(import_id, exc.message, exc.rejected, exc.warnings)
            raise exc.with_report(import_id) from None
        except TrainyardError as exc:
            self.imports.fail(import_id, exc.message, report.rejected, report.warnings)
            raise
        except Exception as exc:
            log.exception("import failed", extra={"import_id": import_id})
            self.imports.fail(import_id, f"internal error: {exc}", report.rejected, report.warnings)
            raise
        finally:
            beating.set()
        self.imports.finish(import_id, dataset_id, version_id, report.warnings, report.rejected)
        return made

    def _heartbeat(self, import_id: str, done: threading.Event) -> None:
        while not done.wait(self.settings.dataset_import_heartbeat_s):
            try:
                self.imports.touch(import_id)
            except Exception:  # noqa: BLE001 - a missed beat (database away) must not stop the import
                log.warning("import heartbeat failed", extra={"import_id": import_id}, exc_info=True)

    def watched_import(self, project: str, import_id: str) -> ImportRow:
        """The import's row for WatchImport; UNAVAILABLE when it is running but has not been heard of for
        dataset_import_stall_s (its replica stopped): a watch must end rather than stream nothing forever."""
        row = self.imports.get(project, import_id)
        silent = self.imports.stalled_for(row, self.settings.dataset_import_stall_s)
        if silent is not None:
            raise Unavailable(
                f"import {import_id} has not been heard of for {silent:.0f} s: the dataset service running it "
                f"({row.worker}) may have stopped (a restarted service fails it; nothing is created until it "
                "finishes); WatchImport again to resume",
                reason="IMPORT_STALLED",
                metadata={"import_id": import_id},
            )
        return row

    def import_upload(
        self, project: str, spec: CreateSpec | VersionSpec, archive_path: Path
    ) -> DatasetRecord | DatasetVersionRow:
        """An uploaded archive (CreateDataset, CreateDatasetVersion) imported as a recorded import."""
        row = self.imports.create(project, RUNNING, message="reading and checking the upload")
        return self.run_recorded(row.id, project, spec, archive_path)

    def import_report(self, project: str, import_id: str, page_size: int = 0, page_token: str = ""):
        return self.imports.report(project, import_id, page_size, page_token)

    def get_import(self, project: str, import_id: str) -> ImportRow:
        return self.imports.get(project, import_id)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
