"""Thin grpc.aio servicer: proto -> Datasets call (in a thread) -> proto."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import tempfile
from pathlib import Path

from google.protobuf import timestamp_pb2

from services.common import identity
from services.common.errors import InvalidArgument, ResourceExhausted
from services.dataset import importer
from services.dataset.service import CreateSpec, Datasets
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
TASK_TYPES = {
    "classification": common_pb2.TASK_TYPE_CLASSIFICATION,
    "detection": common_pb2.TASK_TYPE_DETECTION,
    "segmentation": common_pb2.TASK_TYPE_SEGMENTATION,
    "instance_segmentation": common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION,
}
TASK_NAMES = {v: k for k, v in TASK_TYPES.items()}
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


def version_to_proto(v) -> dataset_pb2.DatasetVersion:
    return dataset_pb2.DatasetVersion(
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
    )


class DatasetServicer(dataset_service_pb2_grpc.DatasetServiceServicer):
    def __init__(self, datasets: Datasets) -> None:
        self.datasets = datasets

    async def CreateDataset(self, request_iterator, context):
        project = identity.current().project
        first = await anext(aiter(request_iterator), None)
        if first is None or first.WhichOneof("payload") != "metadata":
            raise InvalidArgument({"metadata": "the first message of the stream must carry the metadata"})
        spec = spec_from_proto(first.metadata)
        existing = await asyncio.to_thread(self.datasets.precheck, project, spec)
        if existing is not None:
            return dataset_service_pb2.CreateDatasetResponse(dataset=dataset_to_proto(existing))
        limit = self.datasets.settings.dataset_max_upload_bytes
        fd, name = tempfile.mkstemp(prefix="trainyard-upload-", suffix=".archive", dir=self.datasets.spool_dir())
        path = Path(name)
        try:
            received = 0
            with os.fdopen(fd, "wb") as spool:
                async for message in request_iterator:
                    if message.WhichOneof("payload") != "chunk":
                        raise InvalidArgument({"metadata": "only the first message may carry metadata"})
                    received += len(message.chunk)
                    if received > limit:
                        raise ResourceExhausted(
                            f"the upload is over the limit of {limit} bytes",
                            metadata={"limit_bytes": str(limit)},
                        )
                    spool.write(message.chunk)
            if received == 0:
                raise InvalidArgument({"chunk": "the upload has no archive bytes"})
            record = await asyncio.to_thread(self.datasets.create, project, spec, path)
        finally:
            path.unlink(missing_ok=True)
        return dataset_service_pb2.CreateDatasetResponse(dataset=dataset_to_proto(record))

    async def GetDataset(self, request, context):
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
        version = await asyncio.to_thread(self.datasets.get_version, identity.current().project, request.version_id)
        return dataset_service_pb2.GetDatasetVersionResponse(version=version_to_proto(version))

    async def PreviewCases(self, request, context):
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
                    annotations=[
                        dataset_pb2.Annotation(
                            type=common_pb2.ANNOTATION_TYPE_LABEL,
                            class_index=c["label"],
                            class_name=classes[c["label"]],
                        )
                    ],
                    preview_jpeg=c["preview_jpeg"],
                )
                for c in cases
            ]
        )

    async def DeleteDataset(self, request, context):
        await asyncio.to_thread(self.datasets.delete, identity.current().project, request.dataset_id)
        return dataset_service_pb2.DeleteDatasetResponse()
