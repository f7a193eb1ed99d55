"""Controls through the gRPC service with a real trainer: cancel mid-training stops within seconds and
keeps the last checkpoint; a cancelled task continues for more epochs from that checkpoint;
GetTaskArtifacts returns presigned URLs that download the stored bytes."""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request

import grpc
import pytest
from test_trainer_integration import trainer_settings
from test_training_service import MOBILENET, make_dataset, request, stack  # noqa: F401 - fixture

from kernel import objectstore
from trainer.worker import Worker
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb

pytestmark = pytest.mark.integration


async def wait_for(get, predicate, timeout: float = 120.0):
    async with asyncio.timeout(timeout):
        while True:
            task = await get()
            if predicate(task):
                return task
            await asyncio.sleep(0.2)


async def test_cancel_keeps_checkpoint_then_continue_and_artifact_links(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "controls")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    from trainyard.common.v1 import common_pb2 as C

    task = (
        await training.CreateTrainingTask(
            request(dataset_id, hyperparameters=C.Hyperparameters(epochs=30, batch_size=4, image_size=32))
        )
    ).task
    s3 = objectstore.make_client(settings)
    ckpt = f"tasks/{task.id}/checkpoints/last.pt"

    async def get():
        return (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task

    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        runner = asyncio.create_task(worker.run())
        # the first checkpoint is written after epoch 1 (epoch 0 is a classification head probed first)
        await wait_for(get, lambda t: any(m.epoch >= 1 for m in t.epoch_metrics))
        assert objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, ckpt)
        asked = time.monotonic()
        cancelled = (await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=task.id))).task
        assert cancelled.state == T.TASK_STATE_CANCELLED
        async with asyncio.timeout(30):
            while (task.id, "cancelled") not in worker.outcomes:
                await asyncio.sleep(0.1)
        stopped_after = time.monotonic() - asked
        assert stopped_after < 15, f"the trainer took {stopped_after:.1f}s to stop"
        assert objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, ckpt)  # the checkpoint is kept

        with pytest.raises(grpc.RpcError) as exc:
            await training.ContinueTrainingTask(pb.ContinueTrainingTaskRequest(task_id=task.id, additional_epochs=0))
        assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        import io

        import torch  # noqa: E401

        done_epochs = torch.load(io.BytesIO(objectstore.get_bytes(s3, objectstore.ARTIFACTS_BUCKET, ckpt)))["epoch"]
        continued = (
            await training.ContinueTrainingTask(pb.ContinueTrainingTaskRequest(task_id=task.id, additional_epochs=1))
        ).task
        assert continued.state == T.TASK_STATE_QUEUED and continued.hyperparameters.epochs == 31
        # let it resume and then stop it again: the resume came from the checkpoint, not epoch 0
        resumed = await wait_for(get, lambda t: t.state == T.TASK_STATE_RUNNING and t.attempt == 2)
        assert resumed.attempt == 2
        await training.CancelTrainingTask(pb.CancelTrainingTaskRequest(task_id=task.id))
        await worker.shutdown()
        await asyncio.wait_for(runner, 60)

    events = []
    async for r in training.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True)):
        events.append(r.event)
    logs = [e.log for e in events if e.WhichOneof("event") == "log"]
    assert any(f"resumed from the checkpoint of epoch {done_epochs}" in line for line in logs), logs

    links = (await training.GetTaskArtifacts(pb.GetTaskArtifactsRequest(task_id=task.id))).links
    public = settings.s3_public_endpoint  # never the internal endpoint
    assert public and all(link.url.startswith(f"http://{public}/") for link in links)
    with pytest.raises(grpc.RpcError) as exc:
        await training.GetTaskArtifacts(pb.GetTaskArtifactsRequest(task_id=task.id, expires_in_seconds=-1))
    assert exc.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as exc:
        await training.GetTaskArtifacts(pb.GetTaskArtifactsRequest(task_id="tt-nope"))
    assert exc.value.code() == grpc.StatusCode.NOT_FOUND


async def test_artifact_links_download_the_stored_bytes(stack, settings, tmp_path):  # noqa: F811
    from test_trainer_integration import run_worker_until

    from trainyard.common.v1 import common_pb2 as C

    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "links")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    task = (
        await training.CreateTrainingTask(
            request(dataset_id, hyperparameters=C.Hyperparameters(epochs=1, batch_size=8, image_size=32))
        )
    ).task
    async with Worker(settings=trainer_settings(settings, tmp_path)) as worker:
        await run_worker_until(worker, {task.id}, timeout=300)
    async with asyncio.timeout(30):
        while True:
            done = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
            if done.state == T.TASK_STATE_SUCCEEDED:
                break
            await asyncio.sleep(0.2)
    links = (await training.GetTaskArtifacts(pb.GetTaskArtifactsRequest(task_id=task.id, expires_in_seconds=60))).links
    by_name = {link.name: link for link in links}
    assert {"model.pt", "metrics.json", "model.onnx", "curves.png"} <= set(by_name)
    refs = {a.name: a.object for a in done.artifacts}
    body = await asyncio.to_thread(lambda: urllib.request.urlopen(by_name["metrics.json"].url, timeout=10).read())
    assert hashlib.sha256(body).hexdigest() == refs["metrics.json"].sha256
    assert by_name["metrics.json"].expire_time.seconds > time.time()
