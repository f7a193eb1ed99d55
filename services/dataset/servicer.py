"""Thin grpc.aio servicer: proto -> Datasets call (in a thread) -> proto."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path

from google.protobuf import timestamp_pb2

from kernel import contract, identity
from kernel.errors import InvalidArgument, ResourceExhausted, require
from services.dataset import export, importer, preview
from services.dataset.domain import MODE_ADD_OR_REPLACE, MODE_REPLACE_ALL, CreateSpec, Datasets, VersionSpec
from services.dataset.store import DatasetRecord, utc
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2, dataset_service_pb2_grpc

log = logging.getLogger(__name__)

FORMATS = {
    dataset_pb2.DATASET_FORMAT_UNSPECIFIED: importer.FORMAT_AUTO,
    dataset_pb2.DATASET_FORMAT_IMAGE_FOLDER: importer.FORMAT_IMAGE_FOLDER,
    dataset_pb2.DATASET_FORMAT_CSV: importer.FORMAT_CSV,
    dataset_pb2.DATASET_FORMAT_COCO: importer.FORMAT_COCO,
    dataset_pb2.DATASET_FORMAT_VOC: importer.FORMAT_VOC,
    dataset_pb2.DATASET_FORMAT_YOLO: importer.FORMAT_YOLO,
    dataset_pb2.DATASET_FORMAT_MASK_FOLDER: importer.FORMAT_MASK_FOLDER,
}
FORMAT_ENUM = {v: k for k, v in FORMATS.items()}
ARCHIVES = {
    dataset_pb2.ARCHIVE_TYPE_UNSPECIFIED: importer.ARCHIVE_AUTO,
    dataset_pb2.ARCHIVE_TYPE_ZIP: importer.ARCHIVE_ZIP,
    dataset_pb2.ARCHIVE_TYPE_TAR: importer.ARCHIVE_TAR,
    dataset_pb2.ARCHIVE_TYPE_TAR_GZ: importer.ARCHIVE_TAR_GZ,
}
TASK_TYPES, TASK_NAMES = contract.TASK_TYPES, contract.TASK_NAMES
ANNOTATION_TYPES = {
    "label": common_pb2.ANNOTATION_TYPE_LABEL,
    "box": common_pb2.ANNOTATION_TYPE_BOX,
    "mask": common_pb2.ANNOTATION_TYPE_MASK,
    "polygon": common_pb2.ANNOTATION_TYPE_POLYGON,
}
SPLITS = {"train": common_pb2.SPLIT_TRAIN, "val": common_pb2.SPLIT_VAL, "test": common_pb2.SPLIT_TEST}
SPLIT_NAMES = {v: k for k, v in SPLITS.items()}


def _timestamp(value) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromDatetime(utc(value))
    return ts


def _percentiles(value: dict | None) -> dataset_pb2.Percentiles:
    return dataset_pb2.Percentiles(**(value or {}))


def statistics_to_proto(st: dict) -> dataset_pb2.DatasetStatistics:
    if not st:
        return dataset_pb2.DatasetStatistics()
    return dataset_pb2.DatasetStatistics(
        classes=[dataset_pb2.ClassStatistics(**c) for c in st.get("classes", [])],
        imbalance_ratio=st.get("imbalance_ratio", 0.0),
        width=_percentiles(st.get("width")),
        height=_percentiles(st.get("height")),
        grayscale_fraction=st.get("grayscale_fraction", 0.0),
        objects_per_image=_percentiles(st.get("objects_per_image")),
        small_boxes=st.get("small_boxes", 0),
        medium_boxes=st.get("medium_boxes", 0),
        large_boxes=st.get("large_boxes", 0),
        duplicate_groups=st.get("duplicate_groups", 0),
        conflict_groups=st.get("conflict_groups", 0),
        leak_groups=st.get("leak_groups", 0),
        rejected_files=[dataset_pb2.RejectedFile(**r) for r in st.get("rejected_files", [])],
        empty_images=st.get("empty_images", 0),
    )


def version_to_proto(v) -> dataset_pb2.DatasetVersion:
    return dataset_pb2.DatasetVersion(
        statistics=statistics_to_proto(json.loads(v.stats_json or "{}")),
        parent_version_id=v.parent_version_id or "",
        ignore_index=v.ignore_index or 0,
        id=v.id,
        dataset_id=v.dataset_id,
        number=v.number,
        manifest=common_pb2.ObjectRef(
            bucket=v.manifest_bucket, key=v.manifest_key, sha256=v.manifest_sha256, size_bytes=v.manifest_size
        ),
        case_count=v.case_count,
        split_counts=dataset_pb2.SplitCounts(train=v.train_count, val=v.val_count, test=v.test_count),
        classes=[dataset_pb2.ClassInfo(**c) for c in json.loads(v.classes_json)],
        annotation_types=[ANNOTATION_TYPES[a] for a in json.loads(v.annotation_types_json) if a in ANNOTATION_TYPES],
        source_format=FORMAT_ENUM.get(v.source_format, dataset_pb2.DATASET_FORMAT_UNSPECIFIED),
        import_warnings=json.loads(v.warnings_json),
        create_time=_timestamp(v.create_time),
        import_id=v.import_id or "",
    )


def dataset_to_proto(record: DatasetRecord) -> dataset_pb2.Dataset:
    d = record.dataset
    out = dataset_pb2.Dataset(
        id=d.id,
        project=d.project,
        name=d.name,
        description=d.description,
        task_types=[TASK_TYPES[t] for t in record.task_types if t in TASK_TYPES],
        create_time=_timestamp(d.create_time),
        update_time=_timestamp(d.update_time),
    )
    if record.version is not None:
        out.latest_version.CopyFrom(version_to_proto(record.version))
    return out


def spec_from_proto(meta: dataset_service_pb2.CreateDatasetMetadata) -> CreateSpec:
    violations = {}
    if meta.format not in FORMATS:
        name = (
            dataset_pb2.DatasetFormat.Name(meta.format)
            if meta.format in dataset_pb2.DatasetFormat.values()
            else meta.format
        )
        violations["metadata.format"] = f"unknown format {name}"
    if meta.archive_type not in ARCHIVES:
        violations["metadata.archive_type"] = f"unknown archive type {meta.archive_type}"
    if meta.task_type != common_pb2.TASK_TYPE_UNSPECIFIED and meta.task_type not in TASK_NAMES:
        violations["metadata.task_type"] = (
            f"unknown task type {meta.task_type}; one of "
            + ", ".join(common_pb2.TaskType.Name(t) for t in TASK_NAMES)
            + " (or TASK_TYPE_UNSPECIFIED: whatever the annotations give)"
        )
    if violations:
        raise InvalidArgument(violations)
    return CreateSpec(
        name=meta.name,
        description=meta.description,
        format=FORMATS[meta.format],
        archive_type=ARCHIVES[meta.archive_type],
        val_fraction=meta.val_fraction,
        test_fraction=meta.test_fraction,
        split_seed=meta.split_seed,
        request_id=meta.request_id,
        accept_partial=meta.accept_partial,
        ignore_index=meta.ignore_index if meta.HasField("ignore_index") else 255,
        task=TASK_NAMES.get(meta.task_type, ""),
        drop_duplicates=meta.drop_duplicates,
    )


VERSION_MODES = {
    dataset_service_pb2.VERSION_MODE_UNSPECIFIED: MODE_ADD_OR_REPLACE,
    dataset_service_pb2.VERSION_MODE_ADD_OR_REPLACE: MODE_ADD_OR_REPLACE,
    dataset_service_pb2.VERSION_MODE_REPLACE_ALL: MODE_REPLACE_ALL,
}
EXPORTS = {
    dataset_pb2.EXPORT_FORMAT_COCO: export.EXPORT_COCO,
    dataset_pb2.EXPORT_FORMAT_IMAGE_FOLDER: export.EXPORT_IMAGE_FOLDER,
    dataset_pb2.EXPORT_FORMAT_MASK_PNG: export.EXPORT_MASK_PNG,
}
IMPORT_STATES = {
    "pending": dataset_pb2.IMPORT_STATE_PENDING,
    "running": dataset_pb2.IMPORT_STATE_RUNNING,
    "succeeded": dataset_pb2.IMPORT_STATE_SUCCEEDED,
    "failed": dataset_pb2.IMPORT_STATE_FAILED,
}


def version_spec_from_proto(
    meta: dataset_service_pb2.CreateDatasetVersionMetadata, dataset_id: str = ""
) -> VersionSpec:
    violations = {}
    if meta.format not in FORMATS:
        violations["metadata.format"] = f"unknown format {meta.format}"
    if meta.archive_type not in ARCHIVES:
        violations["metadata.archive_type"] = f"unknown archive type {meta.archive_type}"
    if meta.mode not in VERSION_MODES:
        violations["metadata.mode"] = f"unknown mode {meta.mode}"
    if not (dataset_id or meta.dataset_id):
        violations["metadata.dataset_id"] = "is required"
    if violations:
        raise InvalidArgument(violations)
    return VersionSpec(
        dataset_id=dataset_id or meta.dataset_id,
        mode=VERSION_MODES[meta.mode],
        format=FORMATS[meta.format],
        archive_type=ARCHIVES[meta.archive_type],
        val_fraction=meta.val_fraction,
        test_fraction=meta.test_fraction,
        split_seed=meta.split_seed,
        accept_partial=meta.accept_partial,
        request_id=meta.request_id,
        ignore_index=meta.ignore_index if meta.HasField("ignore_index") else 255,
        drop_duplicates=meta.drop_duplicates,
    )


STATUS_REJECTED_FILES = 100  # in an ImportStatus; GetImportReport pages through all of them


def import_to_proto(row, *, with_rejected: bool = True) -> dataset_pb2.ImportStatus:
    rejected = json.loads(row.rejected_json or "[]")
    return dataset_pb2.ImportStatus(
        id=row.id,
        state=IMPORT_STATES.get(row.state, dataset_pb2.IMPORT_STATE_UNSPECIFIED),
        done=row.done,
        total=row.total,
        message=row.message,
        dataset_id=row.dataset_id or "",
        version_id=row.version_id or "",
        rejected_files=[dataset_pb2.RejectedFile(**r) for r in rejected[:STATUS_REJECTED_FILES]]
        if with_rejected
        else [],
        rejected_count=len(rejected),
        warning_count=len(json.loads(row.warnings_json or "[]")),
    )


def annotations_to_proto(case: dict, classes: list[str]) -> list[dataset_pb2.Annotation]:
    def name(i: int) -> str:
        return classes[i] if 0 <= i < len(classes) else str(i)

    out = []
    if "label" in case:
        out.append(
            dataset_pb2.Annotation(
                type=common_pb2.ANNOTATION_TYPE_LABEL, class_index=case["label"], class_name=name(case["label"])
            )
        )
    for box in case.get("boxes") or ():
        ann = dataset_pb2.Annotation(
            type=common_pb2.ANNOTATION_TYPE_POLYGON
            if box.get("polygons") or box.get("rle")
            else common_pb2.ANNOTATION_TYPE_BOX,
            class_index=box["class"],
            class_name=name(box["class"]),
            box=box["bbox"],
            polygons=[dataset_pb2.Polygon(points=p) for p in box.get("polygons") or ()],
        )
        if box.get("rle"):
            ann.rle_counts = box["rle"]["counts"]
            ann.rle_size.extend(box["rle"]["size"])
        out.append(ann)
    if case.get("mask_key"):
        out.append(
            dataset_pb2.Annotation(
                type=common_pb2.ANNOTATION_TYPE_MASK,
                class_index=-1,
                mask_key=case["mask_key"],
                mask_png=case.get("mask_png", b""),
            )
        )
    return out


async def _first_metadata(request_iterator):
    """The metadata an upload stream must open with."""
    first = await anext(aiter(request_iterator), None)
    if first is None or first.WhichOneof("payload") != "metadata":
        raise InvalidArgument({"metadata": "the first message of the stream must carry the metadata"})
    return first.metadata


def _import_response(status: dataset_pb2.ImportStatus) -> dataset_service_pb2.ImportDatasetResponse:
    response = dataset_service_pb2.ImportDatasetResponse()
    getattr(response, "import").CopyFrom(status)  # "import" is a Python keyword
    return response


class DatasetServicer(dataset_service_pb2_grpc.DatasetServiceServicer):
    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    async def CreateDataset(self, request_iterator, context):
        project = identity.current().project
        spec = spec_from_proto(await _first_metadata(request_iterator))
        existing = await asyncio.to_thread(self.datasets.precheck, project, spec)
        if existing is not None:
            return dataset_service_pb2.CreateDatasetResponse(dataset=dataset_to_proto(existing))
        path = await self._spool(request_iterator, "upload")
        try:
            record = await asyncio.to_thread(self.datasets.import_upload, project, spec, path)
        finally:
            path.unlink(missing_ok=True)
        return dataset_service_pb2.CreateDatasetResponse(dataset=dataset_to_proto(record))

    async def GetDataset(self, request, context):
        require(dataset_id=request.dataset_id)
        record = await asyncio.to_thread(self.datasets.get, identity.current().project, request.dataset_id)
        return dataset_service_pb2.GetDatasetResponse(dataset=dataset_to_proto(record))

    async def ListDatasets(self, request, context):
        task = None
        if request.task_type != common_pb2.TASK_TYPE_UNSPECIFIED:
            task = TASK_NAMES.get(request.task_type)
            if task is None:
                raise InvalidArgument({"task_type": f"unknown task type {request.task_type}"})
        records, token = await asyncio.to_thread(
            self.datasets.list, identity.current().project, task, request.page_size, request.page_token
        )
        return dataset_service_pb2.ListDatasetsResponse(
            datasets=[dataset_to_proto(r) for r in records], next_page_token=token
        )

    async def GetDatasetVersion(self, request, context):
        require(version_id=request.version_id)
        version = await asyncio.to_thread(self.datasets.get_version, identity.current().project, request.version_id)
        return dataset_service_pb2.GetDatasetVersionResponse(version=version_to_proto(version))

    async def PreviewCases(self, request, context):
        require(dataset_id=request.dataset_id)
        split = None
        if request.split != common_pb2.SPLIT_UNSPECIFIED:
            split = SPLIT_NAMES.get(request.split, f"<{request.split}>")
        cases, classes = await asyncio.to_thread(
            self.datasets.preview,
            identity.current().project,
            request.dataset_id,
            request.version_id,
            request.count,
            request.thumbnail_size,
            split,
            request.seed,
            list(request.class_names),
        )
        return dataset_service_pb2.PreviewCasesResponse(
            cases=[
                dataset_pb2.Case(
                    id=c["id"],
                    source_path=c["source_path"],
                    image_sha256=c["sha256"],
                    width=c["width"],
                    height=c["height"],
                    split=SPLITS[c["split"]],
                    annotations=annotations_to_proto(c, classes),
                    preview_jpeg=c["preview_jpeg"],
                    image_url=c.get("image_url", ""),
                )
                for c in cases
            ],
            legend=[
                dataset_pb2.LegendEntry(class_index=i, class_name=n, colour=preview.colour_hex(i))
                for i, n in enumerate(classes)
            ],
        )

    async def _spool(self, messages, what: str) -> Path:
        """Write the chunk messages of an upload stream to a spool file (bounded by the upload limit);
        `what` names the upload in the error for an empty one."""
        limit = self.datasets.settings.dataset_max_upload_bytes
        fd, name = tempfile.mkstemp(prefix="trainyard-upload-", suffix=".archive", dir=self.datasets.spool_dir())
        path = Path(name)
        try:
            received = 0
            with os.fdopen(fd, "wb") as spool:
                async for message in messages:
                    if message.WhichOneof("payload") != "chunk":
                        raise InvalidArgument({"metadata": "only the first message may carry metadata"})
                    received += len(message.chunk)
                    if received > limit:
                        raise ResourceExhausted(
                            f"the upload is over the limit of {limit} bytes", metadata={"limit_bytes": str(limit)}
                        )
                    spool.write(message.chunk)
            if received == 0:
                raise InvalidArgument({"chunk": f"the {what} has no archive bytes"})
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    async def CreateDatasetVersion(self, request_iterator, context):
        project = identity.current().project
        spec = version_spec_from_proto(await _first_metadata(request_iterator))
        await asyncio.to_thread(self.datasets.get, project, spec.dataset_id)  # NOT_FOUND before the upload
        path = await self._spool(request_iterator, "version upload")
        try:
            version = await asyncio.to_thread(self.datasets.import_upload, project, spec, path)
        finally:
            path.unlink(missing_ok=True)
        return dataset_service_pb2.CreateDatasetVersionResponse(version=version_to_proto(version))

    async def ImportDataset(self, request, context):
        project = identity.current().project
        if request.dataset_id:
            meta = request.metadata
            spec = version_spec_from_proto(
                dataset_service_pb2.CreateDatasetVersionMetadata(
                    format=meta.format,
                    archive_type=meta.archive_type,
                    val_fraction=meta.val_fraction,
                    test_fraction=meta.test_fraction,
                    split_seed=meta.split_seed,
                    accept_partial=meta.accept_partial,
                    request_id=meta.request_id,
                    mode=request.mode,
                    ignore_index=meta.ignore_index if meta.HasField("ignore_index") else None,
                    drop_duplicates=meta.drop_duplicates,
                ),
                request.dataset_id,
            )
        else:
            spec = spec_from_proto(request.metadata)
        row = await asyncio.to_thread(
            self.datasets.start_import, project, request.source.bucket, request.source.key, spec
        )
        return _import_response(import_to_proto(row))

    async def WatchImport(self, request, context):
        require(import_id=request.import_id)
        project = identity.current().project
        last = None
        while True:
            row = await asyncio.to_thread(self.datasets.watched_import, project, request.import_id)
            status = import_to_proto(row)
            if status != last:
                yield dataset_service_pb2.WatchImportResponse(status=status)
                last = status
            if row.state in ("succeeded", "failed"):
                return
            await asyncio.sleep(0.2)

    async def ExportDatasetVersion(self, request, context):
        require(version_id=request.version_id)
        project = identity.current().project
        await asyncio.to_thread(self.datasets.get_version, project, request.version_id)  # NOT_FOUND first
        fmt = EXPORTS.get(request.format)
        if fmt is None:
            raise InvalidArgument({"format": "must be COCO, IMAGE_FOLDER or MASK_PNG"})
        ref, url = await asyncio.to_thread(self.datasets.export, project, request.version_id, fmt)
        return dataset_service_pb2.ExportDatasetVersionResponse(archive=common_pb2.ObjectRef(**ref), url=url)

    async def GetImportReport(self, request, context):
        require(import_id=request.import_id)
        row, warnings, rejected, token = await asyncio.to_thread(
            self.datasets.import_report,
            identity.current().project,
            request.import_id,
            request.page_size,
            request.page_token,
        )
        response = dataset_service_pb2.GetImportReportResponse(
            warnings=warnings,
            rejected_files=[dataset_pb2.RejectedFile(**r) for r in rejected],
            next_page_token=token,
        )
        getattr(response, "import").CopyFrom(import_to_proto(row, with_rejected=False))
        return response

    async def DeleteDataset(self, request, context):
        require(dataset_id=request.dataset_id)
        await asyncio.to_thread(self.datasets.delete, identity.current().project, request.dataset_id)
        return dataset_service_pb2.DeleteDatasetResponse()
