"""The whole classification flow through the gateway, on real NATS, S3 and SQL.

Task type -> datasets that fit (with a preview) -> model (zoo browse, recommendation) ->
start -> a trainer node trains from the imported ImageNet weights -> SUCCEEDED with metrics
and artifacts in the object store.
"""

from __future__ import annotations

import asyncio
import json
import secrets

import grpc
import pytest

from gateway.app import start as start_gateway
from kernel import objectstore
from kernel.errors import field_violations
from services.dataset.app import start as start_dataset
from services.dataset.samples import (
    make_classification_archive,
    make_detection_archive,
    make_segmentation_archive,
    upload_chunks,
)
from services.modelzoo.app import start as start_modelzoo
from services.recommend.app import start as start_recommend
from services.training.app import start as start_training
from trainer.settings import TrainerSettings
from trainer.worker import Worker
from trainyard.common.v1 import common_pb2
from trainyard.dataset.v1 import dataset_service_pb2 as ds
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mz
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.recommend.v1 import recommend_service_pb2 as rc
from trainyard.recommend.v1 import recommend_service_pb2_grpc
from trainyard.training.v1 import training_pb2, training_service_pb2_grpc
from trainyard.training.v1 import training_service_pb2 as tr

pytestmark = [pytest.mark.integration, pytest.mark.e2e]

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"
CLASSIFICATION = common_pb2.TASK_TYPE_CLASSIFICATION


@pytest.fixture
async def platform(settings, catalog_path, tmp_path):
    """Every service, the gateway and one trainer, in-process, wired like the local stack."""
    token = f"ty_admin_{secrets.token_urlsafe(24)}"
    base = settings.model_copy(update={"internal_token": secrets.token_hex(16), "modelzoo_catalog": str(catalog_path)})
    running = []
    try:
        dataset = await start_dataset(base)
        zoo = await start_modelzoo(base)
        running += [dataset, zoo]
        wired = base.model_copy(update={"dataset_address": dataset.address, "modelzoo_address": zoo.address})
        recommend = await start_recommend(wired)
        running.append(recommend)
        wired = wired.model_copy(update={"recommend_address": recommend.address})
        training = await start_training(wired)
        running.append(training)
        wired = wired.model_copy(update={"training_address": training.address})
        gateway = await start_gateway(wired.model_copy(update={"listen": "127.0.0.1:0", "bootstrap_token": token}))
        running.append(gateway)
        trainer_settings = TrainerSettings.model_validate(
            {**dict(base.__dict__), "trainer_name": "e2e-trainer", "trainer_cache_dir": tmp_path / "cache"}
        )
        worker = Worker(settings=trainer_settings)
        await worker.connect()
        trainer_task = asyncio.create_task(worker.run())
        channel = grpc.aio.insecure_channel(gateway.address)
        yield channel, token, base
        await channel.close()
        await worker.shutdown()
        await asyncio.wait_for(trainer_task, 60)
        await worker.close()
    finally:
        for service in reversed(running):
            await service.stop()


def auth(token: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {token}"),)


async def test_classification_flow_through_the_gateway(platform):
    channel, token, settings = platform
    md = auth(token)
    datasets = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    zoo = modelzoo_service_pb2_grpc.ModelZooServiceStub(channel)
    recommend = recommend_service_pb2_grpc.RecommendationServiceStub(channel)
    training = training_service_pb2_grpc.TrainingServiceStub(channel)

    # No token, no entry.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await zoo.ListModels(mz.ListModelsRequest(task_type=CLASSIFICATION))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED

    # 1. Model zoo: browse, then import the offline MobileNetV2 ImageNet weights.
    models = await zoo.ListModels(mz.ListModelsRequest(task_type=CLASSIFICATION, page_size=500), metadata=md)
    assert models.total_size >= 50
    imported = (await zoo.ImportWeights(mz.ImportWeightsRequest(model_id=MOBILENET), metadata=md)).model
    assert imported.weights.sha256 and imported.weights.size_bytes > 1_000_000

    # 2. Dataset: upload an ImageFolder archive by client stream; it fits classification only.
    archive = make_classification_archive(classes=("circle", "square", "triangle"), per_class=10, size=48, seed=3)
    metadata = ds.CreateDatasetMetadata(name="shapes", description="e2e", val_fraction=0.3, split_seed=1)
    dataset = (
        await datasets.CreateDataset(upload_chunks(metadata, archive, chunk_size=16 * 1024), metadata=md)
    ).dataset
    assert [c.name for c in dataset.latest_version.classes] == ["circle", "square", "triangle"]
    fit = await datasets.ListDatasets(ds.ListDatasetsRequest(task_type=CLASSIFICATION), metadata=md)
    assert dataset.id in [d.id for d in fit.datasets]
    unfit = await datasets.ListDatasets(ds.ListDatasetsRequest(task_type=common_pb2.TASK_TYPE_DETECTION), metadata=md)
    assert dataset.id not in [d.id for d in unfit.datasets]
    preview = await datasets.PreviewCases(ds.PreviewCasesRequest(dataset_id=dataset.id, count=4), metadata=md)
    assert len(preview.cases) == 4 and all(c.preview_jpeg.startswith(b"\xff\xd8") for c in preview.cases)

    # 3. Auto select: the recommendation ranks zoo models for this dataset.
    suggestions = (
        await recommend.Recommend(
            rc.RecommendRequest(
                task_type=CLASSIFICATION,
                dataset_id=dataset.id,
                data_type=common_pb2.DATA_TYPE_NATURAL_PHOTO,
                preference=common_pb2.TRAINING_PREFERENCE_FASTEST,
            ),
            metadata=md,
        )
    ).suggestions
    assert suggestions and suggestions[0].rationale

    # Bad input is refused up front, naming each field, and nothing is queued.
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await training.CreateTrainingTask(
            tr.CreateTrainingTaskRequest(
                name="bad",
                task_type=CLASSIFICATION,
                dataset_id=dataset.id,
                model_id=MOBILENET,
                hyperparameters=common_pb2.Hyperparameters(epochs=-1, learning_rate=50),
            ),
            metadata=md,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert {"hyperparameters.epochs", "hyperparameters.learning_rate"} <= set(field_violations(err.value))
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await training.CreateTrainingTask(
            tr.CreateTrainingTaskRequest(
                name="ghost", task_type=CLASSIFICATION, dataset_id="no-such-dataset", model_id=MOBILENET
            ),
            metadata=md,
        )
    assert err.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-dataset" in err.value.details()
    assert not (await training.ListTrainingTasks(tr.ListTrainingTasksRequest(), metadata=md)).tasks

    # 4. Start: fine-tune MobileNetV2 from the imported weights and watch it to the end.
    task = (
        await training.CreateTrainingTask(
            tr.CreateTrainingTaskRequest(
                name="shapes-mobilenet",
                task_type=CLASSIFICATION,
                dataset_id=dataset.id,
                model_id=MOBILENET,
                transfer_strategy=common_pb2.TRANSFER_STRATEGY_FINE_TUNE_ALL,
                hyperparameters=common_pb2.Hyperparameters(epochs=2, batch_size=8, image_size=48, learning_rate=3e-3),
                request_id="e2e-1",
            ),
            metadata=md,
        )
    ).task
    assert task.state in (training_pb2.TASK_STATE_QUEUED, training_pb2.TASK_STATE_RUNNING)
    states, epochs_seen = [], set()
    watch = training.WatchTrainingTask(tr.WatchTrainingTaskRequest(task_id=task.id, from_start=True), metadata=md)
    async for response in watch:
        event = response.event
        if event.HasField("task"):
            states.append(event.task.state)
        if event.HasField("epoch_metrics"):
            epochs_seen.add(event.epoch_metrics.epoch)
    assert states[-1] == training_pb2.TASK_STATE_SUCCEEDED, states
    assert training_pb2.TASK_STATE_RUNNING in states
    assert epochs_seen == {1, 2}

    done = (await training.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task.id), metadata=md)).task
    assert 0.0 <= done.metrics["val_top1"] <= 1.0
    names = {a.name for a in done.artifacts}
    assert {"metrics.json", "model.pt"} <= names
    metrics_ref = next(a.object for a in done.artifacts if a.name == "metrics.json")
    s3 = objectstore.make_client(settings)
    report = json.loads(objectstore.get_bytes(s3, metrics_ref.bucket, metrics_ref.key))
    assert report["class_names"] == ["circle", "square", "triangle"]
    assert len(report["confusion_matrix"]) == 3

    # The same request_id returns the same task instead of a second one.
    again = await training.CreateTrainingTask(
        tr.CreateTrainingTaskRequest(
            name="shapes-mobilenet",
            task_type=CLASSIFICATION,
            dataset_id=dataset.id,
            model_id=MOBILENET,
            hyperparameters=common_pb2.Hyperparameters(epochs=2, batch_size=8, image_size=48, learning_rate=3e-3),
            request_id="e2e-1",
        ),
        metadata=md,
    )
    assert again.task.id == task.id


# The fastest zoo entry of each dense task type, trained from scratch (no weights to import) on tiny
# generated archives imported through the gateway: what a user does, minus the waiting.
DENSE_TASKS = {
    common_pb2.TASK_TYPE_DETECTION: (
        "tv/fasterrcnn_mobilenet_v3_large_320_fpn.coco_v1",
        lambda: make_detection_archive(n=8, size=64, seed=5, splits=True),
    ),
    common_pb2.TASK_TYPE_SEGMENTATION: (
        "combo/lraspp+mobilenet_v3_large.imagenet1k_v1",
        lambda: make_segmentation_archive(n=8, size=48, seed=6, ignore_border=True),
    ),
    common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION: (
        "combo/maskrcnn+mobilenet_v3_large.imagenet1k_v1",
        lambda: make_detection_archive(n=8, size=64, seed=7, splits=True, polygons=True),
    ),
}


@pytest.mark.slow
async def test_detection_and_segmentation_train_through_the_gateway(platform):
    """Detection, semantic and instance segmentation: import -> create -> SUCCEEDED with the metrics the
    task type promises (COCO mAP and per-class AP; mIoU, per-class IoU and pixel accuracy; mask and box mAP)."""
    channel, token, settings = platform
    md = auth(token)
    datasets = dataset_service_pb2_grpc.DatasetServiceStub(channel)
    training = training_service_pb2_grpc.TrainingServiceStub(channel)
    s3 = objectstore.make_client(settings)

    tasks = {}
    for task_type, (model_id, archive) in DENSE_TASKS.items():
        name = common_pb2.TaskType.Name(task_type).removeprefix("TASK_TYPE_").lower()
        metadata = ds.CreateDatasetMetadata(name=f"shapes-{name}", val_fraction=0.3, split_seed=1, task_type=task_type)
        dataset = (await datasets.CreateDataset(upload_chunks(metadata, archive()), metadata=md)).dataset
        tasks[task_type] = (
            await training.CreateTrainingTask(
                tr.CreateTrainingTaskRequest(
                    name=f"{name}-e2e",
                    task_type=task_type,
                    dataset_id=dataset.id,
                    model_id=model_id,
                    transfer_strategy=common_pb2.TRANSFER_STRATEGY_FROM_SCRATCH,
                    hyperparameters=common_pb2.Hyperparameters(epochs=1, batch_size=4, image_size=64),
                ),
                metadata=md,
            )
        ).task

    for task_type, task in tasks.items():
        watch = training.WatchTrainingTask(tr.WatchTrainingTaskRequest(task_id=task.id, from_start=True), metadata=md)
        async for _ in watch:  # ends when the task does
            pass
        done = (await training.GetTrainingTask(tr.GetTrainingTaskRequest(task_id=task.id), metadata=md)).task
        assert done.state == training_pb2.TASK_STATE_SUCCEEDED, (task_type, done.failure_reason)
        assert [m.epoch for m in done.epoch_metrics] == [1]
        ref = next(a.object for a in done.artifacts if a.name == "metrics.json")
        report = json.loads(objectstore.get_bytes(s3, ref.bucket, ref.key))
        per_class = {p["class"]: p for p in report["per_class"]}
        if task_type == common_pb2.TASK_TYPE_SEGMENTATION:
            wanted = ("val_miou", "val_pixel_acc")
            assert set(per_class) == {"background", "circle", "square"}
            assert all(p["iou"] is None or 0.0 <= p["iou"] <= 1.0 for p in per_class.values())
            assert report["metrics"]["val_pixel_acc"] > 0.0
        else:
            wanted = ("val_map", "val_map_50")  # COCO mAP@[.5:.95] and mAP@.5 (boxes)
            assert set(per_class) == {"circle", "square"}
            assert all("ap" in p for p in per_class.values())
            if task_type == common_pb2.TASK_TYPE_INSTANCE_SEGMENTATION:
                wanted += ("val_mask_map", "val_mask_map_50")
                assert all("mask_ap" in p for p in per_class.values())
        for metric in wanted:
            assert 0.0 <= done.metrics[metric] <= 1.0, (task_type, metric, dict(done.metrics))
            assert metric in done.epoch_metrics[0].values
