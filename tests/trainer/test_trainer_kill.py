"""A trainer process killed mid-training (SIGKILL: no nak, no cleanup) loses nothing: JetStream redelivers
the job after the ack wait, a second trainer resumes from the last epoch checkpoint in S3, and the task
ends SUCCEEDED with one final set of artifacts."""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_trainer_integration import run_worker_until, trainer_settings
from test_training_service import MOBILENET, make_dataset, request, stack  # noqa: F401 - fixture

from kernel import messaging, objectstore
from trainer.worker import Worker, durable_name
from trainyard.common.v1 import common_pb2 as C
from trainyard.modelzoo.v1 import modelzoo_service_pb2 as mpb
from trainyard.training.v1 import training_pb2 as T
from trainyard.training.v1 import training_service_pb2 as pb

pytestmark = pytest.mark.integration

ACK_WAIT = 5.0
REPO = Path(__file__).resolve().parent.parent.parent


def trainer_env(settings, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINYARD_") and k != "DATABASE_URL"}
    env.update(
        {
            "TRAINYARD_S3_ENDPOINT": settings.s3_endpoint,
            "TRAINYARD_S3_ACCESS_KEY": settings.s3_access_key,
            "TRAINYARD_S3_SECRET_KEY": settings.s3_secret_key,
            "TRAINYARD_NATS_URL": settings.nats_url,
            "TRAINYARD_HOME": str(tmp_path / "killed-home"),
            "TRAINYARD_TRAINER_NAME": "doomed-trainer",
            "TRAINYARD_TRAINER_TASK_TYPES": "classification",
            "TRAINYARD_TRAINER_ACK_WAIT": str(ACK_WAIT),
            "TRAINYARD_TRAINER_HEARTBEAT_S": "1",
            "TRAINYARD_TRAINER_PROGRESS_INTERVAL_S": "0",
            "TRAINYARD_DEVICE": "cpu",
            "TRAINYARD_TRAINER_THREADS": "1",
            "PYTHONPATH": str(REPO),
        }
    )
    return env


async def drop_consumer(settings, purge: bool = False) -> None:
    """Remove the shared classification consumer so the next trainer creates it with its own ack wait
    (an existing durable keeps the config it was made with). With `purge`, first let the last ack land
    and drop any classification job left in the queue, so no later test's trainer gets it."""
    nc = await messaging.connect(settings.nats_url, "kill-test")
    try:
        js = nc.jetstream()
        await messaging.ensure_streams(js)
        durable = durable_name("classification")
        if purge:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                info = await js.consumer_info(messaging.JOBS_STREAM, durable)
                if not info.num_ack_pending and not info.num_pending:
                    break
                await asyncio.sleep(0.2)
            await js.purge_stream(messaging.JOBS_STREAM, subject=messaging.jobs_subject("classification"))
        try:
            await js.delete_consumer(messaging.JOBS_STREAM, durable)
        except Exception:  # noqa: BLE001 - not there yet
            pass
    finally:
        await nc.close()


async def test_killed_trainer_job_is_resumed_by_another(stack, settings, tmp_path):  # noqa: F811
    datasets, zoo, training = stack
    dataset_id = await make_dataset(datasets, "kill")
    await zoo.ImportWeights(mpb.ImportWeightsRequest(model_id=MOBILENET))
    await drop_consumer(settings)
    proc = None
    try:
        task = (
            await training.CreateTrainingTask(
                request(
                    dataset_id,
                    transfer_strategy=C.TRANSFER_STRATEGY_FINE_TUNE_ALL,
                    hyperparameters=C.Hyperparameters(epochs=6, batch_size=4, image_size=48, early_stopping_patience=0),
                )
            )
        ).task
        s3 = objectstore.make_client(settings)
        ckpt = f"tasks/{task.id}/checkpoints/last.pt"
        log = (tmp_path / "doomed.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "trainer"],
            env=trainer_env(settings, tmp_path),
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        async with asyncio.timeout(180):  # a checkpoint exists and the service has the epoch's metrics
            while True:
                assert proc.poll() is None, (tmp_path / "doomed.log").read_text()[-3000:]
                got = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
                if got.epoch_metrics and objectstore.exists(s3, objectstore.ARTIFACTS_BUCKET, ckpt):
                    break
                await asyncio.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        proc.wait(30)
        log.close()
        assert got.state == T.TASK_STATE_RUNNING and got.trainer_node == "doomed-trainer"

        survivor = trainer_settings(settings, tmp_path).model_copy(
            update={"trainer_name": "survivor", "trainer_ack_wait": ACK_WAIT, "trainer_task_types": ["classification"]}
        )
        async with Worker(settings=survivor) as worker:
            await run_worker_until(worker, {task.id}, timeout=180)
        assert dict(worker.outcomes)[task.id] == "succeeded", worker.outcomes
        assert time.monotonic() - killed_at >= ACK_WAIT - 1  # it came back through the ack wait, not a nak
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(30)
        await drop_consumer(settings, purge=True)  # later tests make it with their own settings

    done = (await training.GetTrainingTask(pb.GetTrainingTaskRequest(task_id=task.id))).task
    assert done.state == T.TASK_STATE_SUCCEEDED, done.failure_reason
    assert done.trainer_node == "survivor" and done.attempt >= 2
    names = collections.Counter(a.name for a in done.artifacts)
    assert {"checkpoint", "model.pt", "metrics.json"} <= set(names) and max(names.values()) == 1, names
    # Every epoch reports once, in order: one whose event was lost at the kill is republished from the
    # checkpoint's history by the survivor, and the service applies the republished ones by epoch.
    assert [m.epoch for m in done.epoch_metrics] == [1, 2, 3, 4, 5, 6]

    events = []
    async for r in training.WatchTrainingTask(pb.WatchTrainingTaskRequest(task_id=task.id, from_start=True)):
        events.append(r.event)
    logs = [e.log for e in events if e.WhichOneof("event") == "log"]
    assert any("resumed from the checkpoint of epoch" in line for line in logs), logs
    resumed = [int(line.rsplit(" ", 1)[1]) for line in logs if line.startswith("resumed from the checkpoint of epoch")]
    assert resumed and resumed[-1] >= 1
    # the republished epochs added no event: each (epoch, values) pair appears once in the history
    reported = [
        (e.epoch_metrics.epoch, sorted(e.epoch_metrics.values.items())) for e in events if e.epoch_metrics.epoch
    ]
    assert len(reported) == len({(ep, tuple(v)) for ep, v in reported}) and {ep for ep, _ in reported} == set(
        range(1, 7)
    )
    states = [e.task.state for e in events if e.WhichOneof("event") == "task"]
    assert states.count(T.TASK_STATE_SUCCEEDED) == 1 and states[-1] == T.TASK_STATE_SUCCEEDED
