"""The training service over gRPC with the real dataset and model zoo services, NATS, S3 and SQL,
and a trainer in-process: create (with validation), watch to SUCCEEDED, get, list, cancel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_trainer_integration import run_worker_until, trainer_settings

from services.common.errors import field_violations
from services.dataset.app import start as start_dataset
from services.dataset.samples import make_classification_archive, upload_chunks
from services.modelzoo.app import start as start_modelzoo
from services.modelzoo.catalog import shared_catalog
from services.training.app import start as start_training
from trainer.worker import Worker
from trainyard.common.v1 import common_pb2 as C
from trainyard.dataset.v1 import dataset_service_pb2 as dpb
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb
from trainyard.training.v1 import training_service_pb2_grpc

pytestmark = pytest.mark.integration

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"


@pytest.fixture
async def stack(settings, tmp_path, tmp_path_factory):
    offline = tmp_path / "offline-weights"
    offline.mkdir()
    zoo_settings = settings.model_copy(
        update={
            "modelzoo_catalog": str(shared_catalog(tmp_path_factory.getbasetemp())),
            "modelzoo_offline_weights_dir": str(offline),
        }
    )
    dataset = await start_dataset(settings)
    zoo = await start_modelzoo(zoo_settings)
    training = await start_training(
        settings.model_copy(update={"dataset_address": dataset.address, "modelzoo_address": zoo.address})
    )
    channels = [grpc.aio.insecure_channel(s.address) for s in (dataset, zoo, training)]
    try:
        yield (
            dataset_service_pb2_grpc.DatasetServiceStub(channels[0]),
            modelzoo_service_pb2_grpc.ModelZooServiceStub(channels[1]),
            training_service_pb2_grpc.TrainingServiceStub(channels[2]),
        )
    finally:
        for channel in channels:
            await channel.close()
        for running in (training, zoo, dataset):
            await running.stop()


async def make_dataset(stub, name: str) -> str:
    archive = make_classification_archive(classes=("circle", "square"), per_class=12, size=40, seed=3)
    meta = dpb.CreateDatasetMetadata(name=name, val_fraction=0.25, split_seed=1)
    response = await stub.CreateDataset(upload_chunks(meta, archive, chunk_size=64 * 1024))
    return response.dataset.id


def request(dataset_id: str, **kw) -> pb.CreateTrainingTaskRequest:
    base = dict(
        name="shapes",
        task_type=C.TASK_TYPE_CLASSIFICATION,
        dataset_id=dataset_id,
        model_id=MOBILENET,
        hyperparameters=C.Hyperparameters(epochs=2, batch_size=8, image_size=32),
    )
    base.update(kw)
    return pb.CreateTrainingTaskRequest(**base)


async def test_create_train_watch_to_success(stack, settings, tmp_path):
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "shapes")

    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(
            request(dataset_id, name="", hyperparameters=C.Hyperparameters(epochs=0, batch_size=-1, learning_rate=99))
        )
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert set(field_violations(exc.value)) == {
        "name",
        "hyperparameters.batch_size",
        "hyperparameters.learning_rate",
    }
    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(request("no-such-dataset"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND and "no-such-dataset" in exc.value.details()
    with pytest.raises(grpc.RpcError) as exc:
        await training.CreateTrainingTask(request(dataset_id))  # weights not imported yet
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION and "ImportWeights" in exc.value.details()
    assert not (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks

    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    task = (await training.CreateTrainingTask(request(dataset_id, request_id="req-1"))).task
    assert task.state == T.TASK_STATE_QUEUED and task.hyperparameters.learning_rate == pytest.approx(1e-3)
    again = (await training.CreateTrainingTask(request(dataset_id, request_id="req-1"))).task
    assert again.id == task.id

    events = []

    async def watch():
        async for response in training.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True)):
            events.append(response.event)

    watcher = asyncio.create_task(watch())
    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {task.id})
    await asyncio.wait_for(watcher, 30)

    states = [e.task.state for e in events if e.WhichOneof("event") == "task"]
    assert states[:3] == [T.TASK_STATE_PENDING, T.TASK_STATE_QUEUED, T.TASK_STATE_RUNNING]
    assert states[-1] == T.TASK_STATE_SUCCEEDED
    assert [e.sequence for e in events] == list(range(1, len(events) + 1))
    assert sum(e.WhichOneof("event") == "epoch_metrics" for e in events) == 2

    done = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
    assert done.state == T.TASK_STATE_SUCCEEDED and "val_top1" in done.metrics
    assert {"checkpoint", "best_checkpoint", "model.pt", "metrics.json", "model.onnx"} <= {
        a.name for a in done.artifacts
    }
    assert done.trainer_node == "test-trainer" and done.attempt == 1 and len(done.epoch_metrics) == 2
    with pytest.raises(grpc.RpcError) as exc:
        await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=task.id))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # A queued task can be cancelled; a trainer that pulls it later skips it.
    second = (await training.CreateTrainingTask(request(dataset_id, name="second"))).task
    cancelled = (await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=second.id))).task
    assert cancelled.state == T.TASK_STATE_CANCELLED
    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {second.id})
    assert dict(worker.outcomes)[second.id] == "skipped-cancelled"
    listed = (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks
    assert [t.id for t in listed] == [second.id, task.id]
    only = await training.ListTrainingTasks(pb.ListTrainingTasksRequest(state=T.TASK_STATE_SUCCEEDED))
    assert [t.id for t in only.tasks] == [task.id]
