"""Every error fits gRPC's trailers, fields are bounded before anything echoes them, and an import's full
report stays retrievable (issue 18, items 2, 3 and 5).

Before: an import refused over ~150 bad masks answered RESOURCE_EXHAUSTED "received metadata size exceeds
hard limit" (the user never saw the cause), a 1 MiB id echoed into NOT_FOUND broke the transport the same
way, and CreateDataset took task_type = 99.
"""

from __future__ import annotations

import base64
import io
import zipfile
from urllib.parse import quote

import grpc
import numpy as np
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from PIL import Image

from kernel import fields
from kernel.errors import InvalidArgument, NotFound, error_reason, field_violations
from services.dataset.samples import make_classification_archive, upload_chunks
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as pb
from trainyard.dataset.v1 import dataset_service_pb2_grpc

# gRPC's default soft limit on a call's metadata; trailers past it may be refused
SOFT_LIMIT = 8 * 1024


def trailer_bytes(status: grpc.Status) -> int:
    """Bytes the status takes in trailers: grpc-message percent-encoded, the details base64-encoded."""
    size = 0
    for key, value in status.trailing_metadata:
        size += len(key) + len(base64.b64encode(value) if isinstance(value, bytes) else value)
    return size + len(quote(status.details, safe=" !\"#$&'()*+,-./:;<=>?@[\\]^_`{|}~"))


def test_a_huge_error_is_cut_to_fit_the_trailers_and_says_how_much_was_left_out():
    violations = {f"images/{i:05d}_{'x' * 80}.png": "mask has value(s) [11] " + "y" * 300 for i in range(5000)}
    error = InvalidArgument(violations, message="m" * 100_000, metadata={"echo": "z" * 1_000_000})
    status = error.to_status()
    assert trailer_bytes(status) < SOFT_LIMIT / 2
    assert "more characters" in status.details
    decoded = rpc_status.status_pb2.Status.FromString(dict(status.trailing_metadata)["grpc-status-details-bin"])
    bad = error_details_pb2.BadRequest()
    next(d for d in decoded.details if d.Is(bad.DESCRIPTOR)).Unpack(bad)
    assert 1 <= len(bad.field_violations) <= 21
    assert bad.field_violations[-1].description.startswith("and ") and "more" in bad.field_violations[-1].description
    assert bad.field_violations[0].field.startswith("images/00000_")  # the first ones are kept, in order


def test_a_message_of_non_ascii_characters_is_cut_by_its_encoded_size():
    status = NotFound("数据集 " * 5000).to_status()  # 3 bytes each in UTF-8, 9 once percent-encoded
    assert trailer_bytes(status) < SOFT_LIMIT / 2


@pytest.mark.parametrize(
    ("field", "limit"),
    [("dataset_id", fields.MAX_ID), ("request_id", fields.MAX_REQUEST_ID), ("page_token", fields.MAX_PAGE_TOKEN)],
)
def test_limits_by_field_name(field, limit):
    assert fields.limit_for(field) == limit
    assert fields.limit_for("name") == fields.MAX_NAME and fields.limit_for("description") == fields.MAX_DESCRIPTION
    assert fields.limit_for("query") == fields.MAX_TEXT


@pytest.mark.parametrize(
    "bad",
    ["ds\x00x", "abc\u202edcba", "zero\u200bwidth", "bell\x07", "line\u2028sep", "bom\ufeff", "tab\there"],
)
def test_names_refuse_control_and_format_characters(bad):
    why = fields.name_violation(bad)
    assert why is not None and "control or format characters" in why and "U+" in why


def test_descriptions_take_line_breaks_and_tabs_but_no_other_control_or_format_characters():
    assert fields.description_violation("first line\n\tsecond line") is None
    assert "U+202E" in fields.description_violation("look \u202eright")
    assert "U+0000" in fields.description_violation("nul \x00")
    assert fields.name_violation("Ünïcode names, émojis 🚀 and 中文 are fine") is None


@pytest.fixture
async def dataset(settings):
    from services.dataset.app import start

    running = await start(settings)
    channel = grpc.aio.insecure_channel(running.address)
    try:
        yield dataset_service_pb2_grpc.DatasetServiceStub(channel)
    finally:
        await channel.close()
        await running.stop()


@pytest.mark.integration
async def test_a_1_mib_id_is_refused_by_its_length_without_echoing_it(dataset):
    huge = "d" * (1024 * 1024)
    for call, request in (
        (dataset.GetDataset, pb.GetDatasetRequest(dataset_id=huge)),
        (dataset.GetImportReport, pb.GetImportReportRequest(import_id="imp-1", page_token=huge)),
        (dataset.ListDatasets, pb.ListDatasetsRequest(page_token=huge)),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await call(request)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
        (field, why), *_ = field_violations(exc.value).items()
        assert why.startswith("must be at most") and why.endswith(f"got {len(huge)}")
        assert huge[:300] not in exc.value.details()
    # in a client stream's metadata message too, before the upload is read
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name="x", request_id=huge), b"zip"))
    assert "metadata.request_id" in field_violations(exc.value)


@pytest.mark.integration
async def test_create_dataset_refuses_an_unknown_task_type(dataset):
    archive = make_classification_archive(per_class=3, size=16, seed=2)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name="t", task_type=99), archive))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "unknown task type 99" in field_violations(exc.value)["metadata.task_type"]
    assert not (await dataset.ListDatasets(pb.ListDatasetsRequest())).datasets
    ok = await dataset.CreateDataset(
        upload_chunks(pb.CreateDatasetMetadata(name="t", task_type=common_pb2.TASK_TYPE_CLASSIFICATION), archive)
    )
    assert ok.dataset.name == "t"


@pytest.mark.integration
@pytest.mark.parametrize("name", ["evil\u202egnp.exe", "nul\x00byte", "zero\u200bwidth"])
async def test_create_dataset_refuses_control_and_format_characters_in_names(dataset, name):
    archive = make_classification_archive(per_class=3, size=16, seed=2)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name=name), archive))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "control or format characters" in field_violations(exc.value)["metadata.name"]
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.CreateDataset(
            upload_chunks(pb.CreateDatasetMetadata(name="fine", description=f"a {name}"), archive)
        )
    assert "metadata.description" in field_violations(exc.value)


def _bad_masks_archive(count: int) -> bytes:
    """CamVid-like: 11 classes, every mask has the void value 11 (not a class, not the ignore index 255)."""
    buf = io.BytesIO()
    image = io.BytesIO()
    Image.new("RGB", (8, 6), (90, 20, 20)).save(image, "PNG")
    mask = io.BytesIO()
    Image.fromarray(np.full((6, 8), 11, np.uint8), "L").save(mask, "PNG")
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("classes.txt", "\n".join(f"class{i}" for i in range(11)))
        for i in range(count):
            zf.writestr(f"train/images/0001TP_{i:06d}.png", image.getvalue())
            zf.writestr(f"train/masks/0001TP_{i:06d}.png", mask.getvalue())
    return buf.getvalue()


@pytest.mark.integration
async def test_an_import_refused_over_many_files_fits_and_its_report_lists_every_file(dataset):
    archive = _bad_masks_archive(300)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name="camvid"), archive))
    error = exc.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()  # was RESOURCE_EXHAUSTED
    assert "300 bad case(s)" in error.details()
    assert "has value(s) [11] that are not class indices (0..10) nor the ignore index 255" in error.details()
    assert error_reason(error) == "INVALID_ARGUMENT"
    status = rpc_status.from_call(error)
    info = error_details_pb2.ErrorInfo()
    next(d for d in status.details if d.Is(info.DESCRIPTOR)).Unpack(info)
    import_id = info.metadata["import_id"]
    assert import_id in error.details() and info.metadata["rejected_count"] == "300"

    seen, token, pages = [], "", 0
    while True:
        page = await dataset.GetImportReport(
            pb.GetImportReportRequest(import_id=import_id, page_size=128, page_token=token)
        )
        status_ = getattr(page, "import")
        assert status_.rejected_count == 300 and status_.message.startswith("300 bad case(s)")
        seen += [(r.path, r.reason) for r in page.rejected_files]
        pages += 1
        token = page.next_page_token
        if not token:
            break
    assert pages == 3 and len(seen) == 300 and len({p for p, _ in seen}) == 300
    assert all("has value(s) [11]" in reason for _, reason in seen)
    with pytest.raises(grpc.aio.AioRpcError) as exc:
        await dataset.GetImportReport(pb.GetImportReportRequest(import_id="imp-nope"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


@pytest.mark.integration
async def test_a_successful_import_names_its_report_with_every_warning(dataset):
    archive = make_classification_archive(per_class=4, size=16, seed=3)
    response = await dataset.CreateDataset(upload_chunks(pb.CreateDatasetMetadata(name="ok"), archive))
    version = response.dataset.latest_version
    assert version.import_id.startswith("imp-")
    report = await dataset.GetImportReport(pb.GetImportReportRequest(import_id=version.import_id))
    status = getattr(report, "import")
    assert status.version_id == version.id and status.dataset_id == response.dataset.id
    assert list(report.warnings) == list(version.import_warnings) and not report.rejected_files


@pytest.mark.integration
async def test_through_the_gateway_oversized_fields_and_bad_names_are_refused_and_fit(settings):
    """The same limits through the front door: a backend's refusal of a 1 MiB id is relayed whole, and the
    gateway's own AuthService bounds fields and refuses control characters in key and project names."""
    from test_gateway import ADMIN_TOKEN, bearer

    from gateway.app import start as start_gateway
    from services.dataset.app import start
    from trainyard.auth.v1 import auth_pb2, auth_service_pb2, auth_service_pb2_grpc

    backend = await start(settings.model_copy(update={"internal_token": "t"}))
    gw = await start_gateway(
        settings.model_copy(
            update={
                "internal_token": "t",
                "dataset_address": backend.address,
                "bootstrap_token": ADMIN_TOKEN,
                "listen": "127.0.0.1:0",
            }
        )
    )
    channel = grpc.aio.insecure_channel(gw.address)
    admin = bearer(ADMIN_TOKEN)
    try:
        datasets = dataset_service_pb2_grpc.DatasetServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await datasets.GetDataset(pb.GetDatasetRequest(dataset_id="i" * 1_000_000), metadata=admin)
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(exc.value) == {"dataset_id": "must be at most 256 characters, got 1000000"}
        auth = auth_service_pb2_grpc.AuthServiceStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await auth.CreateApiKey(
                auth_service_pb2.CreateApiKeyRequest(name="ci", role=auth_pb2.ROLE_VIEWER, request_id="r" * 500_000),
                metadata=admin,
            )
        assert field_violations(exc.value) == {"request_id": "must be at most 128 characters, got 500000"}
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await auth.CreateApiKey(
                auth_service_pb2.CreateApiKeyRequest(name="ci\u202egnp", role=auth_pb2.ROLE_VIEWER), metadata=admin
            )
        assert "U+202E" in field_violations(exc.value)["name"]
        with pytest.raises(grpc.aio.AioRpcError) as exc:
            await auth.CreateProject(
                auth_service_pb2.CreateProjectRequest(project_id="team-b", display_name="Team\x00B"), metadata=admin
            )
        assert "U+0000" in field_violations(exc.value)["display_name"]
        # an upload refused on its first message: the client gets the refusal, not INTERNAL "Internal error
        # from Core" (a status sent before the client half-closed raced its writes: grpc/grpc#36066)
        for _ in range(3):
            with pytest.raises(grpc.aio.AioRpcError) as exc:
                await datasets.CreateDataset(
                    upload_chunks(pb.CreateDatasetMetadata(name="bad\x00name"), b"z" * (12 * 1024 * 1024), 1 << 20),
                    metadata=admin,
                )
            assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.value.details()
    finally:
        await channel.close()
        await gw.stop()
        await backend.stop()
