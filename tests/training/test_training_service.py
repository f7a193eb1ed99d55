"""The training service over gRPC with the real dataset and model zoo services, NATS, S3 and SQL,
and a trainer in-process: create (with validation), watch to SUCCEEDED, get, list, cancel."""

from __future__ import annotations

import asyncio

import grpc
import pytest
from test_trainer_integration import run_worker_until, trainer_settings

from kernel.errors import field_violations
from services.dataset.app import start as start_dataset
from services.dataset.samples import make_classification_archive, upload_chunks
from services.modelzoo.app import start as start_modelzoo
from services.training.app import start as start_training
from trainer.worker import Worker
from trainyard.common.v1 import common_pb2 as C
from trainyard.dataset.v1 import dataset_service_pb2 as dpb
from trainyard.dataset.v1 import dataset_service_pb2_grpc
from trainyard.modelzoo.v1 import modelzoo_pb2 as M
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
from trainyard.modelzoo.v1 import modelzoo_service_pb2_grpc
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb
from trainyard.training.v1 import training_service_pb2_grpc

pytestmark = pytest.mark.integration

MOBILENET = "tv/mobilenet_v2.imagenet1k_v1"


@pytest.fixture
async def stack(settings, zoo_settings):
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


OTHER_PROJECT = (("x-trainyard-project", "other"),)


async def make_dataset(stub, name: str, classes=("circle", "square")) -> str:
    archive = make_classification_archive(classes=classes, per_class=12, size=40, seed=3)
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
    assert not (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks
    before = (await zoo.GetModel(mpb.GetModelRequest(model_id=MOBILENET))).model
    assert before.weight_status == M.WEIGHT_STATUS_IMPORTABLE  # not in the store: the task fetches them first

    task = (await training.CreateTrainingTask(request(dataset_id, request_id="req-1"))).task
    stored = (await zoo.GetModel(mpb.GetModelRequest(model_id=MOBILENET))).model.weights
    assert task.pretrained_weights == stored and stored.sha256.startswith("b0353104")
    # the recipe on this tiny dataset (kernel.recipes): linear probe, SGD at 1e-3 per 16 images
    assert task.state == T.TASK_STATE_QUEUED and task.transfer_strategy == C.TRANSFER_STRATEGY_LINEAR_PROBE
    hp = task.hyperparameters
    assert hp.learning_rate == pytest.approx(1e-3 * hp.batch_size / 16)
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
    # the recipe's linear probe reports as epoch 0, then the two epochs
    assert [e.epoch_metrics.epoch for e in events if e.WhichOneof("event") == "epoch_metrics"] == [0, 1, 2]

    done = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
    assert done.state == T.TASK_STATE_SUCCEEDED and "val_top1" in done.metrics
    assert {"checkpoint", "best_checkpoint", "model.pt", "metrics.json", "model.onnx"} <= {
        a.name for a in done.artifacts
    }
    assert done.trainer_node == "test-trainer" and done.attempt == 1 and len(done.epoch_metrics) == 3
    with pytest.raises(grpc.RpcError) as exc:
        await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=task.id))
    assert exc.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The trained model joined the zoo of the task's project, with its lineage; other projects do not see it.
    trained_id = f"trained/{task.id}"
    model = (await zoo.GetModel(mpb.GetModelRequest(model_id=trained_id))).model
    assert model.base_model_id == MOBILENET and model.task_id == task.id
    assert list(model.class_names) == ["circle", "square"] and model.dataset_version_id == done.dataset_version_id
    assert trained_id in [m.id for m in (await zoo.ListModels(mpb.ListModelsRequest(origin="trained"))).models]
    with pytest.raises(grpc.RpcError) as exc:
        await zoo.GetModel(mpb.GetModelRequest(model_id=trained_id), metadata=OTHER_PROJECT)
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND
    listed_other = await zoo.ListModels(mpb.ListModelsRequest(origin="trained"), metadata=OTHER_PROJECT)
    assert trained_id not in [m.id for m in listed_other.models]

    # Retraining: the trained network on a dataset whose class list grows (old classes first).
    grown_id = await make_dataset(datasets, "shapes-grown", classes=("circle", "square", "triangle"))
    retrain = (
        await training.CreateTrainingTask(
            request(
                grown_id, name="retrain", model_id=trained_id, hyperparameters=C.Hyperparameters(epochs=1, batch_size=8)
            )
        )
    ).task
    assert retrain.mode == T.TRAINING_MODE_SELECTION_RETRAINING and retrain.model_id == trained_id
    assert retrain.hyperparameters.image_size == 32  # the trained model's input size is the default
    await assert_old_head_rows_kept(settings, tmp_path, done)

    # A specialized preset: its network and hyperparameters as defaults, the user's values win.
    presets = (await zoo.ListPresets(mpb.ListPresetsRequest(task_type=C.TASK_TYPE_CLASSIFICATION))).presets
    preset = next(p for p in presets if p.id == "preset/chest-xray-classification")
    weights = upload_random_weights(settings, preset.model_id)
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=preset.model_id, upload=weights))
    special = (
        await training.CreateTrainingTask(
            pb.CreateTrainingTaskRequest(
                name="xray",
                task_type=C.TASK_TYPE_CLASSIFICATION,
                dataset_id=dataset_id,
                preset_id=preset.id,
                hyperparameters=C.Hyperparameters(epochs=3, batch_size=4),
            )
        )
    ).task
    assert special.mode == T.TRAINING_MODE_SELECTION_SPECIALIZED and special.preset_id == preset.id
    assert special.model_id == preset.model_id
    hp = special.hyperparameters
    assert (hp.epochs, hp.batch_size) == (3, 4)  # user overrides
    assert hp.learning_rate == pytest.approx(preset.hyperparameters.learning_rate)
    assert hp.optimizer == preset.hyperparameters.optimizer and hp.image_size == preset.input_size
    got = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=special.id))).task
    assert got.preset_id == preset.id and got.mode == T.TRAINING_MODE_SELECTION_SPECIALIZED
    await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=special.id))

    # A queued task can be cancelled; a trainer that pulls it later skips it.
    second = (await training.CreateTrainingTask(request(dataset_id, name="second"))).task
    cancelled = (await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=second.id))).task
    assert cancelled.state == T.TASK_STATE_CANCELLED
    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {second.id, special.id, retrain.id})
    outcomes = dict(worker.outcomes)
    assert outcomes[second.id] == outcomes[special.id] == "skipped-cancelled"
    retrained = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=retrain.id))).task
    assert retrained.state == T.TASK_STATE_SUCCEEDED, retrained.failure_reason
    assert "val_top1" in retrained.metrics
    listed = (await training.ListTrainingTasks(pb.ListTrainingTasksRequest())).tasks
    assert [t.id for t in listed] == [second.id, special.id, retrain.id, task.id]
    only = await training.ListTrainingTasks(pb.ListTrainingTasksRequest(state=T.TASK_STATE_SUCCEEDED))
    assert [t.id for t in only.tasks] == [retrain.id, task.id]


async def assert_old_head_rows_kept(settings, tmp_path, done) -> None:
    """Unit-level check on the network the trainer builds for the retraining job: the old classes'
    head rows are the trained ones, the new class's row is new."""
    import torch

    from kernel import objectstore
    from trainer.models import build_model

    [ref] = [a.object for a in done.artifacts if a.name == "model.pt"]
    blob = objectstore.get_bytes(objectstore.make_client(settings), ref.bucket, ref.key)
    path = tmp_path / "trained-model.pt"
    path.write_bytes(blob)
    trained = torch.load(path, map_location="cpu", weights_only=True)["state_dict"]
    built = await asyncio.to_thread(
        build_model, "torchvision", "mobilenet_v2", 3, path, 2, task="classification", weights_num_classes=2
    )
    head = built.model.state_dict()
    assert head["classifier.1.weight"].shape[0] == 3
    assert torch.equal(head["classifier.1.weight"][:2], trained["classifier.1.weight"])
    assert torch.equal(head["classifier.1.bias"][:2], trained["classifier.1.bias"])
    assert torch.equal(head["features.0.0.weight"], trained["features.0.0.weight"])
    # a dataset with other classes (issue 16: auto select offered the ants/bees model for brain scans, and
    # the job failed): the trained features carry over, the head starts anew
    from trainer.job import kept_head_rows

    assert kept_head_rows(["circle", "square"], ["circle", "square", "star"])[0] == 2
    rows, note = kept_head_rows(["circle", "square"], ["no", "yes"])
    assert rows is None and "its head starts anew" in note
    other = await asyncio.to_thread(build_model, "torchvision", "mobilenet_v2", 2, path, 2, task="classification")
    state = other.model.state_dict()
    assert torch.equal(state["features.0.0.weight"], trained["features.0.0.weight"])
    assert not torch.equal(state["classifier.1.weight"], trained["classifier.1.weight"])


def upload_random_weights(settings, model_id: str) -> C.ObjectRef:
    """A full state_dict of the preset's torchvision network (random init: no internet here) in the
    uploads bucket, for ImportWeights."""
    import io

    import torch
    import torchvision

    from kernel import objectstore

    arch = model_id.split("/", 1)[1].split(".", 1)[0]
    buf = io.BytesIO()
    torch.save(torchvision.models.get_model(arch, weights=None).state_dict(), buf)
    key = f"test/{arch}.pth"
    digest = objectstore.put_bytes(objectstore.make_client(settings), objectstore.UPLOADS_BUCKET, key, buf.getvalue())
    return C.ObjectRef(bucket=objectstore.UPLOADS_BUCKET, key=key, sha256=digest, size_bytes=len(buf.getvalue()))
