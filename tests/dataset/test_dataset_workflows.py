"""Integration tests (real S3 + SQL, in-process gRPC): detection/segmentation through the service,
statistics, previews with annotations, new versions, imports from the upload bucket, export round trips."""

from __future__ import annotations

import io
import json
import zipfile

import grpc
import numpy as np
import pytest
from PIL import Image

from kernel import objectstore
from services.dataset.app import start
from services.dataset.samples import (
    make_classification_archive,
    make_detection_archive,
    make_segmentation_archive,
    upload_chunks,
)
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_pb2, dataset_service_pb2_grpc
from trainyard.dataset.v1 import dataset_service_pb2 as pb

pytestmark = pytest.mark.integration


@pytest.fixture
async def service(settings):
    running = await start(settings)
    channel = grpc.aio.insecure_channel(running.address)
    try:
        yield dataset_service_pb2_grpc.DatasetServiceStub(channel), objectstore.make_client(settings)
    finally:
        await channel.close()
        await running.stop()


async def create(stub, name: str, data: bytes, **kw) -> dataset_pb2.Dataset:
    response = await stub.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name=name, **kw), data))
    return response.dataset


def version_chunks(meta: pb.CreateDatasetVersionMetadata, data: bytes):
    yield pb.CreateDatasetVersionRequest(metadata=meta)
    for i in range(0, len(data), 64 * 1024):
        yield pb.CreateDatasetVersionRequest(chunk=data[i : i + 64 * 1024])


def manifest(s3, version: dataset_pb2.DatasetVersion) -> dict:
    return objectstore.get_json(s3, version.manifest.bucket, version.manifest.key)


def comparable(m: dict) -> list:
    """Cases by image bytes and split, with class names instead of indices."""
    classes = m["classes"]
    out = []
    for c in m["cases"]:
        ann: object
        if "label" in c:
            ann = classes[c["label"]]
        elif "boxes" in c:
            ann = sorted(
                (classes[b["class"]], [round(v, 1) for v in b["bbox"]], json.dumps(b.get("polygons") or b.get("rle")))
                for b in c["boxes"]
            )
        else:
            ann = c["mask_key"]
        out.append((c["sha256"], c["split"], json.dumps(ann)))
    return sorted(out)


async def test_detection_dataset_statistics_preview_and_task_listing(service):
    stub, s3 = service
    ds = await create(stub, "boxes", make_detection_archive(fmt="coco", n=10, polygons=True, seed=2))
    assert list(ds.task_types) == [common_pb2.TASK_TYPE_DETECTION, common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION]
    v = ds.latest_version
    m = manifest(s3, v)
    assert m["annotation_types"] == ["box", "polygon"] and all("boxes" in c for c in m["cases"])
    st = (await stub.GetDataset(pb.GetDatasetRequest(dataset_id=ds.id))).dataset.latest_version.statistics
    boxes = sum(len(c["boxes"]) for c in m["cases"])
    assert sum(c.instance_count for c in st.classes) == boxes
    assert st.small_boxes + st.medium_boxes + st.large_boxes == boxes
    assert st.width.p50 == 64 and st.objects_per_image.max >= 1
    assert st.imbalance_ratio >= 1
    assert all(c.image_count <= 10 for c in st.classes)

    listed = await stub.ListDatasets(pb.ListDatasetsRequest(task_type=common_pb2.TASK_TYPE_SEGMENTATION))
    assert ds.id not in [d.id for d in listed.datasets]
    listed = await stub.ListDatasets(pb.ListDatasetsRequest(task_type=common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION))
    assert [d.id for d in listed.datasets] == [ds.id]

    preview = await stub.PreviewCases(
        pb.PreviewCasesRequest(dataset_id=ds.id, count=4, thumbnail_size=96, class_names=["square"])
    )
    assert preview.cases and [e.class_name for e in preview.legend] == ["circle", "square"]
    for case in preview.cases:
        assert any(a.class_name == "square" for a in case.annotations)  # the class filter
        assert all(len(a.box) == 4 and a.polygons for a in case.annotations)
        thumb = Image.open(io.BytesIO(case.preview_jpeg))
        assert thumb.format == "JPEG" and max(thumb.size) == 96
        assert case.image_url.startswith("http://localhost:")  # the public endpoint, never the internal one
        # the class colour of a box is drawn on the thumbnail
        colour = np.array([int(preview.legend[1].colour[i : i + 2], 16) for i in (1, 3, 5)])
        arr = np.asarray(thumb.convert("RGB")).astype(int)
        assert (np.abs(arr - colour).sum(axis=2) < 60).any()
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.PreviewCases(pb.PreviewCasesRequest(dataset_id=ds.id, class_names=["zebra"]))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_segmentation_preview_has_translucent_masks_and_raw_mask(service):
    stub, s3 = service
    ds = await create(stub, "masks", make_segmentation_archive(n=6, palette=True, ignore_border=True))
    assert list(ds.task_types) == [common_pb2.TASK_TYPE_SEGMENTATION]
    v = ds.latest_version
    assert v.ignore_index == 255
    m = manifest(s3, v)
    key = m["cases"][0]["mask_key"]
    mask = Image.open(io.BytesIO(objectstore.get_bytes(s3, objectstore.DATASETS_BUCKET, key)))
    assert mask.mode == "L" and mask.size == (48, 48)
    st = v.statistics
    assert [c.name for c in st.classes] == ["background", "circle", "square"]
    assert st.classes[0].image_count == 6
    preview = await stub.PreviewCases(pb.PreviewCasesRequest(dataset_id=ds.id, count=2))
    ann = preview.cases[0].annotations[0]
    assert ann.type == common_pb2.ANNOTATION_TYPE_MASK and ann.mask_key.startswith("masks/")
    assert Image.open(io.BytesIO(ann.mask_png)).size == (48, 48)


async def test_rejected_files_are_reported_with_accept_partial(service):
    stub, _ = service
    files = zipfile.ZipFile(io.BytesIO(make_classification_archive(per_class=4, size=32)))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:
        for name in files.namelist():
            out.writestr(name, files.read(name))
        out.writestr("circle/broken.png", b"not an image")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await create(stub, "strict", buf.getvalue())
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "circle/broken.png" in exc.value.details()
    ds = await create(stub, "lenient", buf.getvalue(), accept_partial=True)
    rejected = ds.latest_version.statistics.rejected_files
    assert [r.path for r in rejected] == ["circle/broken.png"] and "not a recognised image" in rejected[0].reason
    assert ds.latest_version.case_count == 12


async def test_new_version_adds_and_replaces_cases_and_merges_classes(service):
    stub, s3 = service
    ds = await create(stub, "growing", make_classification_archive(classes=("circle", "square"), per_class=5, size=32))
    v1 = ds.latest_version
    extra = make_classification_archive(classes=("square", "star"), per_class=3, size=32, seed=9)
    resp = await stub.CreateDatasetVersion(
        version_chunks(pb.CreateDatasetVersionMetadata(dataset_id=ds.id, request_id="v2"), extra)
    )
    v2 = resp.version
    assert v2.number == 2 and v2.parent_version_id == v1.id
    m1, m2 = manifest(s3, v1), manifest(s3, v2)
    assert m2["classes"] == ["circle", "square", "star"]
    # square/0000.png .. square/0002.png replaced, star added: 10 - 3 + 6
    assert v2.case_count == 13 and len(m2["cases"]) == 13
    by_path = {c["source_path"]: c for c in m2["cases"]}
    assert m2["classes"][by_path["star/0000.png"]["label"]] == "star"
    assert (
        by_path["square/0000.png"]["sha256"] != {c["source_path"]: c for c in m1["cases"]}["square/0000.png"]["sha256"]
    )
    assert manifest(s3, v1) == m1  # the old version is untouched
    got = await stub.GetDataset(pb.GetDatasetRequest(dataset_id=ds.id))
    assert got.dataset.latest_version.id == v2.id
    again = await stub.CreateDatasetVersion(
        version_chunks(pb.CreateDatasetVersionMetadata(dataset_id=ds.id, request_id="v2"), extra)
    )
    assert again.version.id == v2.id  # idempotent retry
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.CreateDatasetVersion(
            version_chunks(pb.CreateDatasetVersionMetadata(dataset_id=ds.id), make_detection_archive(n=4))
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.CreateDatasetVersion(version_chunks(pb.CreateDatasetVersionMetadata(dataset_id="ds-nope"), extra))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_import_from_the_upload_bucket_streams_status(service):
    stub, s3 = service
    data = make_detection_archive(fmt="yolo", n=8)
    objectstore.put_bytes(s3, objectstore.UPLOADS_BUCKET, "u/boxes.zip", data)
    started = await stub.ImportDataset(
        pb.ImportDatasetRequest(
            source=common_pb2.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key="u/boxes.zip"),
            metadata=pb.CreateDatasetMetadata(name="from-bucket"),
        )
    )
    import_id = getattr(started, "import").id
    states = [r.status async for r in stub.WatchImport(pb.WatchImportRequest(import_id=import_id))]
    final = states[-1]
    assert final.state == dataset_pb2.IMPORT_STATE_SUCCEEDED, final.message
    assert final.dataset_id and final.version_id
    ds = (await stub.GetDataset(pb.GetDatasetRequest(dataset_id=final.dataset_id))).dataset
    assert ds.name == "from-bucket" and ds.latest_version.case_count == 8

    # a bad archive fails the import with the report, and creates nothing
    objectstore.put_bytes(s3, objectstore.UPLOADS_BUCKET, "u/bad.zip", b"PK\x03\x04 not really a zip")
    started = await stub.ImportDataset(
        pb.ImportDatasetRequest(
            source=common_pb2.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key="u/bad.zip"),
            metadata=pb.CreateDatasetMetadata(name="bad"),
        )
    )
    states = [r.status async for r in stub.WatchImport(pb.WatchImportRequest(import_id=getattr(started, "import").id))]
    assert states[-1].state == dataset_pb2.IMPORT_STATE_FAILED and "zip" in states[-1].message
    listed = await stub.ListDatasets(pb.ListDatasetsRequest())
    assert "bad" not in [d.name for d in listed.datasets]
    for source, code in (
        (common_pb2.ObjectRef(bucket=objectstore.DATASETS_BUCKET, key="u/boxes.zip"), grpc.StatusCode.INVALID_ARGUMENT),
        (common_pb2.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key="u/none.zip"), grpc.StatusCode.NOT_FOUND),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.ImportDataset(
                pb.ImportDatasetRequest(source=source, metadata=pb.CreateDatasetMetadata(name="x"))
            )
        assert exc.value.code() == code


@pytest.mark.parametrize(
    ("name", "data", "fmt"),
    [
        (
            "coco",
            lambda: make_detection_archive(fmt="coco", n=8, polygons=True, splits=True),
            dataset_pb2.EXPORT_FORMAT_COCO,
        ),
        ("voc", lambda: make_detection_archive(fmt="voc", n=6), dataset_pb2.EXPORT_FORMAT_COCO),
        ("folder", lambda: make_classification_archive(per_class=4, size=32), dataset_pb2.EXPORT_FORMAT_IMAGE_FOLDER),
        ("masks", lambda: make_segmentation_archive(n=6, ignore_border=True), dataset_pb2.EXPORT_FORMAT_MASK_PNG),
    ],
)
async def test_export_round_trip_gives_the_same_cases(service, name, data, fmt):
    stub, s3 = service
    ds = await create(stub, f"rt-{name}", data())
    out = await stub.ExportDatasetVersion(pb.ExportDatasetVersionRequest(version_id=ds.latest_version.id, format=fmt))
    assert out.archive.bucket == objectstore.ARTIFACTS_BUCKET and out.url.startswith("http://localhost:")
    exported = objectstore.get_bytes(s3, out.archive.bucket, out.archive.key)
    again = await create(stub, f"rt-{name}-2", exported)
    a, b = manifest(s3, ds.latest_version), manifest(s3, again.latest_version)
    assert a["classes"] == b["classes"] and a["annotation_types"] == b["annotation_types"]
    assert comparable(a) == comparable(b)


async def test_export_format_must_fit(service):
    stub, _ = service
    ds = await create(stub, "cls", make_classification_archive(per_class=3, size=32))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ExportDatasetVersion(
            pb.ExportDatasetVersionRequest(version_id=ds.latest_version.id, format=dataset_pb2.EXPORT_FORMAT_COCO)
        )
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION
