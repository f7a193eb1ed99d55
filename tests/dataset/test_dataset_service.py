"""Integration tests of the dataset service: real S3 + SQL, gRPC servicer started in-process."""

from __future__ import annotations

import io
import json
import zipfile

import grpc
import pytest
from PIL import Image

from kernel import objectstore
from kernel.errors import field_violations
from kernel.identity import PROJECT_KEY
from services.dataset.app import start
from services.dataset.samples import make_classification_archive, upload_chunks
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


@pytest.fixture(scope="module")
def archive() -> bytes:
    return make_classification_archive(per_class=10, size=48, seed=1)


def meta(name: str, **kw) -> pb.CreateDatasetMetadata:
    return pb.CreateDatasetMetadata(name=name, **kw)


async def create(stub, request_metadata, data, **kw) -> dataset_pb2.Dataset:
    response = await stub.CreateDataset(upload_chunks(request_metadata, data, chunk_size=8 * 1024), **kw)
    return response.dataset


def manifest_keys(s3, dataset_id: str = "") -> list[str]:
    prefix = f"manifests/{dataset_id}/" if dataset_id else "manifests/"
    return [o.object_name for o in s3.list_objects(objectstore.DATASETS_BUCKET, prefix=prefix, recursive=True)]


async def test_create_stores_images_manifest_and_rows(service, archive):
    stub, s3 = service
    ds = await create(stub, meta("shapes", description="three shapes", val_fraction=0.3, split_seed=5), archive)
    assert ds.id and ds.project == "default" and ds.name == "shapes" and ds.description == "three shapes"
    assert list(ds.task_types) == [common_pb2.TASK_TYPE_CLASSIFICATION]
    v = ds.latest_version
    assert v.number == 1 and v.case_count == 30 and v.dataset_id == ds.id
    assert [(c.index, c.name, c.count) for c in v.classes] == [
        (0, "circle", 10),
        (1, "square", 10),
        (2, "triangle", 10),
    ]
    assert (v.split_counts.train, v.split_counts.val, v.split_counts.test) == (21, 9, 0)
    assert list(v.annotation_types) == [common_pb2.ANNOTATION_TYPE_LABEL]
    assert v.source_format == dataset_pb2.DATASET_FORMAT_IMAGE_FOLDER
    assert v.manifest.key == f"manifests/{ds.id}/{v.id}.json"

    manifest = objectstore.get_json(s3, v.manifest.bucket, v.manifest.key)
    assert manifest["schema"] == "trainyard.dataset.manifest/v1"
    assert (manifest["dataset_id"], manifest["version_id"], manifest["number"]) == (ds.id, v.id, 1)
    assert manifest["classes"] == ["circle", "square", "triangle"]
    assert manifest["task_types"] == ["classification"] and manifest["annotation_types"] == ["label"]
    case = manifest["cases"][0]
    assert set(case) >= {"id", "source_path", "image_key", "sha256", "width", "height", "split", "label"}
    stored = objectstore.get_bytes(s3, objectstore.DATASETS_BUCKET, case["image_key"])
    assert case["image_key"] == f"images/{case['sha256'][:2]}/{case['sha256']}"
    assert Image.open(io.BytesIO(stored)).size == (case["width"], case["height"]) == (48, 48)

    got = (await stub.GetDataset(pb.GetDatasetRequest(dataset_id=ds.id))).dataset
    assert got == ds
    version = (await stub.GetDatasetVersion(pb.GetDatasetVersionRequest(version_id=v.id))).version
    assert version == v


async def test_list_by_task_type_newest_first_with_paging(service, archive):
    stub, _ = service
    first = await create(stub, meta("first"), archive)
    second = await create(stub, meta("second", format=dataset_pb2.DATASET_FORMAT_IMAGE_FOLDER), archive)
    listed = await stub.ListDatasets(pb.ListDatasetsRequest(task_type=common_pb2.TASK_TYPE_CLASSIFICATION))
    assert [d.id for d in listed.datasets] == [second.id, first.id] and listed.next_page_token == ""
    none = await stub.ListDatasets(pb.ListDatasetsRequest(task_type=common_pb2.TASK_TYPE_DETECTION))
    assert list(none.datasets) == []
    page1 = await stub.ListDatasets(pb.ListDatasetsRequest(page_size=1))
    assert [d.id for d in page1.datasets] == [second.id] and page1.next_page_token
    page2 = await stub.ListDatasets(pb.ListDatasetsRequest(page_size=1, page_token=page1.next_page_token))
    assert [d.id for d in page2.datasets] == [first.id] and page2.next_page_token == ""
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.ListDatasets(pb.ListDatasetsRequest(page_token="garbage!"))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(exc.value)
    other = await stub.ListDatasets(pb.ListDatasetsRequest(), metadata=((PROJECT_KEY, "other"),))
    assert list(other.datasets) == []  # another project sees nothing


async def test_preview_returns_labelled_jpeg_thumbnails(service, archive):
    stub, _ = service
    ds = await create(stub, meta("preview-me", split_seed=3), archive)
    request = pb.PreviewCasesRequest(dataset_id=ds.id, count=5, thumbnail_size=96, seed=11)
    cases = (await stub.PreviewCases(request)).cases
    assert len(cases) == 5
    for case in cases:
        im = Image.open(io.BytesIO(case.preview_jpeg))
        assert im.format == "JPEG" and max(im.size) == 96
        (annotation,) = case.annotations
        assert annotation.type == common_pb2.ANNOTATION_TYPE_LABEL
        assert annotation.class_name in ("circle", "square", "triangle")
        assert case.source_path.startswith(annotation.class_name + "/")
    again = (await stub.PreviewCases(request)).cases
    assert [c.id for c in again] == [c.id for c in cases]
    val = (
        await stub.PreviewCases(pb.PreviewCasesRequest(dataset_id=ds.id, count=64, split=common_pb2.SPLIT_VAL))
    ).cases
    assert len(val) == ds.latest_version.split_counts.val and {c.split for c in val} == {common_pb2.SPLIT_VAL}
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.PreviewCases(pb.PreviewCasesRequest(dataset_id=ds.id, count=65, thumbnail_size=16))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(exc.value)) == {"count", "thumbnail_size"}


async def test_unknown_ids_are_not_found(service, archive):
    stub, _ = service
    calls = [
        stub.GetDataset(pb.GetDatasetRequest(dataset_id="ds-nope")),
        stub.GetDatasetVersion(pb.GetDatasetVersionRequest(version_id="dsv-nope")),
        stub.PreviewCases(pb.PreviewCasesRequest(dataset_id="ds-nope")),
        stub.DeleteDataset(pb.DeleteDatasetRequest(dataset_id="ds-nope")),
    ]
    for call in calls:
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call
        assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in exc.value.details()
    ds = await create(stub, meta("mine"), archive)
    with pytest.raises(grpc.aio.AioRpcError) as exc:  # another project's dataset is NOT_FOUND
        await stub.GetDataset(pb.GetDatasetRequest(dataset_id=ds.id), metadata=((PROJECT_KEY, "other"),))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_duplicate_name_and_idempotent_retry(service, archive):
    stub, _ = service
    ds = await create(stub, meta("dup", request_id="req-1"), archive)
    retry = await create(stub, meta("dup", request_id="req-1"), archive)
    assert retry.id == ds.id
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await create(stub, meta("dup", request_id="req-2"), archive)
    assert exc.value.code() == grpc.StatusCode.ALREADY_EXISTS
    elsewhere = await create(stub, meta("dup"), archive, metadata=((PROJECT_KEY, "other"),))
    assert elsewhere.id != ds.id and elsewhere.project == "other"


async def test_delete_then_name_is_free(service, archive):
    stub, _ = service
    ds = await create(stub, meta("short-lived"), archive)
    await stub.DeleteDataset(pb.DeleteDatasetRequest(dataset_id=ds.id))
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await stub.GetDataset(pb.GetDatasetRequest(dataset_id=ds.id))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    assert (await create(stub, meta("short-lived"), archive)).id != ds.id


async def test_failed_import_writes_nothing(service, archive):
    stub, s3 = service
    before = set(manifest_keys(s3))
    bad = io.BytesIO()

    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(bad, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        dst.writestr("square/zz-broken.png", b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await create(stub, meta("broken"), bad.getvalue())
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "square/zz-broken.png" in json.dumps(field_violations(exc.value))
    for bad_stream in (
        [pb.CreateDatasetRequest(chunk=b"PK")],  # no metadata first
        list(upload_chunks(meta(""), archive)),  # bad name
        list(upload_chunks(meta("x", val_fraction=0.95), archive)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await stub.CreateDataset(iter(bad_stream))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert list((await stub.ListDatasets(pb.ListDatasetsRequest())).datasets) == []
    assert set(manifest_keys(s3)) == before


async def test_upload_over_the_limit_is_resource_exhausted(settings, archive):
    running = await start(settings.model_copy(update={"dataset_max_upload_bytes": 10_000}))
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = dataset_service_pb2_grpc.DatasetServiceStub(channel)
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await create(stub, meta("too-big"), archive)
            assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert list((await stub.ListDatasets(pb.ListDatasetsRequest())).datasets) == []
    finally:
        await running.stop()
